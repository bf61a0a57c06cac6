//! The export macros: one line turns a policy type into a component of its world.

/// Exports a [`PricingPolicy`](crate::PricingPolicy) as the `pricing` world.
///
/// ```ignore
/// grid_policy_sdk::export_pricing!(MyPricing);
/// ```
#[macro_export]
macro_rules! export_pricing {
    ($policy:ty) => {
        #[doc(hidden)]
        pub struct __GridPricingExport;

        impl $crate::bindings::pricing::Guest for __GridPricingExport {
            fn validate_settings(settings: ::std::string::String) -> ::std::result::Result<(), ::std::string::String> {
                $crate::__glue::validate_settings::<$policy>(&settings)
            }

            fn quote(
                request: $crate::bindings::pricing::grid::policy::types::QuoteRequest,
                node: $crate::bindings::pricing::grid::policy::types::NodeInfo,
            ) -> $crate::bindings::pricing::grid::policy::types::Quote {
                $crate::__glue::pricing_quote::<$policy>(request, node)
            }
        }

        $crate::bindings::pricing::export_pricing_world!(__GridPricingExport with_types_in $crate::bindings::pricing);
    };
}

/// Exports a [`PayeePolicy`](crate::PayeePolicy) as the `payee` world.
///
/// ```ignore
/// grid_policy_sdk::export_payee!(MyPayee);
/// ```
#[macro_export]
macro_rules! export_payee {
    ($policy:ty) => {
        #[doc(hidden)]
        pub struct __GridPayeeExport;

        impl $crate::bindings::payee::Guest for __GridPayeeExport {
            fn validate_settings(settings: ::std::string::String) -> ::std::result::Result<(), ::std::string::String> {
                $crate::__glue::validate_settings::<$policy>(&settings)
            }

            fn check(
                order: $crate::bindings::payee::grid::policy::types::Order,
                node: $crate::bindings::payee::grid::policy::types::NodeInfo,
            ) -> $crate::bindings::payee::grid::policy::types::Decision {
                $crate::__glue::payee_check::<$policy>(order, node)
            }
        }

        $crate::bindings::payee::export_payee_world!(__GridPayeeExport with_types_in $crate::bindings::payee);
    };
}

/// Exports an [`AuthorizationPolicy`](crate::AuthorizationPolicy) as the `authorization` world.
///
/// ```ignore
/// grid_policy_sdk::export_authorization!(MyAuthz);
/// ```
#[macro_export]
macro_rules! export_authorization {
    ($policy:ty) => {
        #[doc(hidden)]
        pub struct __GridAuthorizationExport;

        impl $crate::bindings::authorization::Guest for __GridAuthorizationExport {
            fn validate_settings(settings: ::std::string::String) -> ::std::result::Result<(), ::std::string::String> {
                $crate::__glue::validate_settings::<$policy>(&settings)
            }

            fn authorize_session(
                request: $crate::bindings::authorization::grid::policy::types::SessionRequest,
            ) -> $crate::bindings::authorization::grid::policy::types::SessionDecision {
                $crate::__glue::authorize_session::<$policy>(request)
            }

            fn authorize_request(
                request: $crate::bindings::authorization::grid::policy::types::RequestMeta,
            ) -> $crate::bindings::authorization::grid::policy::types::Decision {
                $crate::__glue::authorize_request::<$policy>(request)
            }
        }

        $crate::bindings::authorization::export_authorization_world!(__GridAuthorizationExport with_types_in $crate::bindings::authorization);
    };
}
