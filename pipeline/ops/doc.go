// Package ops is what the people running churnwatch look at: the
// Prometheus metrics (Metrics, with hooks the consumers, the warehouse, the
// lag monitor and the daily scheduler report to), the health checks behind
// /healthz and /readyz, the live warning dashboard served from embedded
// assets (its stream follows the churn.warnings topic), and the read
// queries and renderings behind the `warnings tail`, `tasks list` and
// `report` commands.
//
// It only observes: it never changes a fact, a warning or a task. Its
// queries are read-only and go through the warehouse's connection.
package ops
