//! How an exchange on the wire fails, the same for both sides.

use crate::proxy::ProxyError;

/// Why an exchange got no complete response: refused before anything reached the client
/// (`E`: what it is answered with), or aborted.
#[derive(Debug, thiserror::Error)]
pub enum Failure<E> {
    /// Nothing was written to the client yet: answer with this error.
    #[error(transparent)]
    Refused(#[from] E),
    /// The response had begun, or the client went away: the connection can only be closed
    /// (the client sees an aborted response).
    #[error("exchange aborted: {0}")]
    Aborted(String),
}

/// Why the exchange with the app failed.
pub type WireError = Failure<ProxyError>;

impl<E> Failure<E> {
    /// The same failure, a refusal answered with `F`.
    pub fn map_refused<F: From<E>>(self) -> Failure<F> {
        match self {
            Failure::Refused(error) => Failure::Refused(error.into()),
            Failure::Aborted(reason) => Failure::Aborted(reason),
        }
    }
}
