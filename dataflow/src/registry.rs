//! `CatalogSet`: the catalogs a query can name, opened once per process.

use std::collections::BTreeMap;
use std::sync::Arc;

use starflow_catalogs::ParquetCatalog;

use crate::error::{PlanError, nearest};

/// Named catalogs, shared by the planner and the scan operators of every worker.
#[derive(Debug, Clone, Default)]
pub struct CatalogSet {
    catalogs: BTreeMap<String, Arc<ParquetCatalog>>,
}

impl CatalogSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a catalog under its name.
    pub fn insert(&mut self, catalog: ParquetCatalog) {
        self.catalogs.insert(catalog.name.clone(), Arc::new(catalog));
    }

    /// Looks a catalog up: exact name first, then case-insensitively.
    pub fn resolve(&self, name: &str) -> Result<&Arc<ParquetCatalog>, PlanError> {
        if let Some(c) = self.catalogs.get(name) {
            return Ok(c);
        }
        let lower = name.to_lowercase();
        let mut matches = self.catalogs.iter().filter(|(k, _)| k.to_lowercase() == lower);
        if let (Some((_, c)), None) = (matches.next(), matches.next()) {
            return Ok(c);
        }
        Err(PlanError::UnknownCatalog {
            catalog: name.to_string(),
            nearest: nearest(name, self.catalogs.keys().map(String::as_str)),
        })
    }

    /// The catalog of a scan, by exact name (as resolved at planning).
    pub fn get(&self, name: &str) -> Option<&Arc<ParquetCatalog>> {
        self.catalogs.get(name)
    }

    /// Catalog names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.catalogs.keys().map(String::as_str)
    }

    /// Copies of the catalogs `plan` scans, each once (a self-crossmatch scans one twice):
    /// what travels with it to other processes.
    pub fn of_plan(&self, plan: &crate::plan::Plan) -> Vec<ParquetCatalog> {
        let names: std::collections::BTreeSet<&str> = plan.catalogs().into_iter().collect();
        names.into_iter().filter_map(|c| self.get(c)).map(|c| c.as_ref().clone()).collect()
    }
}

impl FromIterator<ParquetCatalog> for CatalogSet {
    /// The set of these catalogs (as shipped with a plan).
    fn from_iter<I: IntoIterator<Item = ParquetCatalog>>(catalogs: I) -> Self {
        let mut set = Self::new();
        catalogs.into_iter().for_each(|c| set.insert(c));
        set
    }
}
