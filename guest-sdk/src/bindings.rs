//! Generated WIT bindings, one module per world. Policy authors never touch these: the
//! `export_*!` macros wire a policy type to them.
//!
//! `pub_export_macro` makes wit-bindgen emit each world's export metadata from inside the
//! export macro, so a policy crate's component describes only the one world it exports
//! even though this crate carries all three.

#![allow(missing_docs, clippy::all)]

/// Bindings of the `pricing` world.
pub mod pricing {
    wit_bindgen::generate!({
        path: "../wit",
        world: "grid:policy/pricing@0.1.0",
        pub_export_macro: true,
        export_macro_name: "export_pricing_world",
        default_bindings_module: "grid_policy_sdk::bindings::pricing",
        runtime_path: "grid_policy_sdk::__rt::wit_bindgen::rt",
        generate_all,
    });
}

/// Bindings of the `payee` world.
pub mod payee {
    wit_bindgen::generate!({
        path: "../wit",
        world: "grid:policy/payee@0.1.0",
        pub_export_macro: true,
        export_macro_name: "export_payee_world",
        default_bindings_module: "grid_policy_sdk::bindings::payee",
        runtime_path: "grid_policy_sdk::__rt::wit_bindgen::rt",
        generate_all,
    });
}

/// Bindings of the `authorization` world.
pub mod authorization {
    wit_bindgen::generate!({
        path: "../wit",
        world: "grid:policy/authorization@0.1.0",
        pub_export_macro: true,
        export_macro_name: "export_authorization_world",
        default_bindings_module: "grid_policy_sdk::bindings::authorization",
        runtime_path: "grid_policy_sdk::__rt::wit_bindgen::rt",
        generate_all,
    });
}
