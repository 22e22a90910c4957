//! The parts of Grafana's dashboard JSON model the proxy's dashboard uses, as typed structs.

use std::collections::BTreeMap;

use serde::Serialize;

/// A dashboard (JSON model, schema version 39).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dashboard {
    /// Stable id: links and the sidecar's updates keep pointing at the same dashboard.
    pub uid: String,
    /// Title shown in Grafana.
    pub title: String,
    /// Tags for search.
    pub tags: Vec<String>,
    /// `browser`: times in the viewer's zone.
    pub timezone: &'static str,
    /// JSON model version.
    pub schema_version: u32,
    /// Whether viewers may edit it (a provisioned copy is overwritten anyway).
    pub editable: bool,
    /// Auto-refresh interval.
    pub refresh: &'static str,
    /// Default time range.
    pub time: TimeRange,
    /// Variables.
    pub templating: Templating,
    /// Panels, top to bottom.
    pub panels: Vec<Panel>,
}

/// A relative time range.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimeRange {
    /// Start, e.g. `now-6h`.
    pub from: &'static str,
    /// End, e.g. `now`.
    pub to: &'static str,
}

/// Dashboard variables.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Templating {
    /// The variables, in order.
    pub list: Vec<Variable>,
}

/// A data source picker variable.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Variable {
    /// Name, used as `${name}`.
    pub name: &'static str,
    /// Label shown above the picker.
    pub label: &'static str,
    /// `datasource`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The data source type offered: `prometheus`.
    pub query: &'static str,
}

/// One panel.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Panel {
    /// Unique within the dashboard.
    pub id: u32,
    /// Visualization.
    #[serde(rename = "type")]
    pub kind: PanelKind,
    /// Title.
    pub title: String,
    /// Hover text.
    pub description: String,
    /// Where on the 24-column grid.
    pub grid_pos: GridPos,
    /// The data source (the dashboard's variable).
    pub datasource: DataSourceRef,
    /// Queries.
    pub targets: Vec<Target>,
    /// Units and value mappings.
    pub field_config: FieldConfig,
}

/// Visualizations used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PanelKind {
    /// Lines over time.
    Timeseries,
    /// Discrete states over time.
    StateTimeline,
}

/// Position and size on the grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct GridPos {
    /// Height in rows.
    pub h: u32,
    /// Width in columns (of 24).
    pub w: u32,
    /// Column.
    pub x: u32,
    /// Row.
    pub y: u32,
}

/// A data source reference.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DataSourceRef {
    /// Plugin type.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Uid, here the `${datasource}` variable.
    pub uid: &'static str,
}

/// A PromQL query.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// Query id within the panel (`A`, `B`…).
    pub ref_id: String,
    /// PromQL.
    pub expr: String,
    /// Series name template, e.g. `{{model}} {{status}}`.
    pub legend_format: String,
}

/// Field options.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldConfig {
    /// Defaults for every field.
    pub defaults: FieldDefaults,
    /// Per-field overrides (none).
    pub overrides: Vec<()>,
}

/// Unit and value mappings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldDefaults {
    /// Grafana unit id, e.g. `reqps`, `s`, `percent`.
    pub unit: &'static str,
    /// Value → text mappings (breaker states).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mappings: Vec<ValueMapping>,
}

/// A mapping of exact values to text and colour.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ValueMapping {
    /// `value`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Value (as a string) → display.
    pub options: BTreeMap<String, MappedValue>,
}

/// How one value is shown.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MappedValue {
    /// Text instead of the number.
    pub text: &'static str,
    /// Colour name.
    pub color: &'static str,
    /// Order in the legend.
    pub index: u32,
}
