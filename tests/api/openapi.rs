//! The served `/openapi.json` tells the truth about the components: the
//! document assembled from their fragments has no clash with the host's
//! definitions or each other's, and is valid OpenAPI 3.1.

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_shipped_components_assemble_into_valid_openapi_without_a_clash() {
    let app = spawn_app().await;
    assert_eq!(app.openapi.clashes, Vec::new());
    let problems = souk::http::openapi::structural_problems(&app.openapi.document);
    assert_eq!(problems, Vec::<String>::new());
    let served = app.get("/openapi.json", None).await;
    assert_eq!(served.body, app.openapi.document);
}
