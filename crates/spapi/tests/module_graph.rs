//! The crate's modules import each other in layers, never in a circle (issue 16).

#[test]
fn no_import_circles() {
    module_graph::assert_acyclic(env!("CARGO_MANIFEST_DIR"));
}
