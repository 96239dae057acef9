//! Parser for MLflow's search grammar (placeholder: replaced by the real parser).

use super::{Filter, OrderBy};
use crate::{KeelError, Result};

pub fn parse_run_filter(_filter: &str) -> Result<Filter> {
    Err(KeelError::internal("filter parser not built yet"))
}
pub fn parse_run_order_by(_clauses: &[String]) -> Result<Vec<OrderBy>> {
    Err(KeelError::internal("order_by parser not built yet"))
}
pub fn parse_experiment_filter(_filter: &str) -> Result<Filter> {
    Err(KeelError::internal("filter parser not built yet"))
}
pub fn parse_experiment_order_by(_clauses: &[String]) -> Result<Vec<OrderBy>> {
    Err(KeelError::internal("order_by parser not built yet"))
}
pub fn parse_logged_model_filter(_filter: &str) -> Result<Filter> {
    Err(KeelError::internal("filter parser not built yet"))
}
pub fn parse_logged_model_order_by(_clauses: &[String]) -> Result<Vec<OrderBy>> {
    Err(KeelError::internal("order_by parser not built yet"))
}
