//! Serde for `SchemaRef` (`#[serde(with = "starflow_catalogs::schema_serde")]`), through
//! arrow-schema's own serde impl: plans and catalogs carry schemas across processes.

use std::sync::Arc;

use arrow_schema::{Schema, SchemaRef};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Serialises the schema behind the `Arc`.
pub fn serialize<S: Serializer>(schema: &SchemaRef, s: S) -> Result<S::Ok, S::Error> {
    schema.as_ref().serialize(s)
}

/// Deserialises into a fresh `Arc`.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SchemaRef, D::Error> {
    Schema::deserialize(d).map(Arc::new)
}
