//! The `tokens` capability: sign an access token for an identity the
//! component vouches for. Granted to `customers` only.

use crate::{
    bindings::{tokens::AccessToken, types::Identity},
    runtime::state::StoreState,
};

impl crate::bindings::tokens::Host for StoreState {
    async fn issue(
        &mut self,
        subject: Identity,
        token_epoch: u64,
    ) -> wasmtime::Result<AccessToken> {
        let issued = self
            .services
            .tokens
            .issue(&subject, token_epoch)
            .map_err(|e| wasmtime::format_err!("cannot sign a token: {e}"))?;
        Ok(AccessToken {
            token: issued.token,
            expires_in: issued.expires_in,
        })
    }
}
