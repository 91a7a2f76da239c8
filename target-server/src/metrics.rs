//! Prometheus metrics. (Being built.)

use std::sync::Arc;

use crate::Shared;

pub fn routes(_shared: Arc<Shared>) -> axum::Router {
    axum::Router::new()
}
