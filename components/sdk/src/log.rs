//! Logging into the host's log (tagged there with the component name and
//! the request id), with `format!`-style macros:
//!
//! ```ignore
//! souk_sdk::log::info!("customer {id} registered");
//! ```
//!
//! Never log passwords, tokens or hashes.

pub use crate::wit::log::Level;

/// Writes one log line at `level`.
///
/// Outside WebAssembly (unit tests) there is no host, so the line goes to
/// standard error instead of trapping on the missing import.
pub fn write(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::wit::log::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

#[doc(hidden)]
#[macro_export]
macro_rules! __souk_log_trace {
    ($($arg:tt)+) => { $crate::log::write($crate::log::Level::Trace, &::std::format!($($arg)+)) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __souk_log_debug {
    ($($arg:tt)+) => { $crate::log::write($crate::log::Level::Debug, &::std::format!($($arg)+)) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __souk_log_info {
    ($($arg:tt)+) => { $crate::log::write($crate::log::Level::Info, &::std::format!($($arg)+)) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __souk_log_warn {
    ($($arg:tt)+) => { $crate::log::write($crate::log::Level::Warn, &::std::format!($($arg)+)) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __souk_log_error {
    ($($arg:tt)+) => { $crate::log::write($crate::log::Level::Error, &::std::format!($($arg)+)) };
}

/// Logs very detailed diagnostics, `format!`-style.
#[doc(inline)]
pub use crate::__souk_log_trace as trace;

/// Logs diagnostics, `format!`-style.
#[doc(inline)]
pub use crate::__souk_log_debug as debug;

/// Logs a normal event, `format!`-style.
#[doc(inline)]
pub use crate::__souk_log_info as info;

/// Logs something unexpected that the component handled, `format!`-style.
#[doc(inline)]
pub use crate::__souk_log_warn as warn;

/// Logs a failure, `format!`-style.
#[doc(inline)]
pub use crate::__souk_log_error as error;
