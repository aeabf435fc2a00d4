// Package deploy holds no code: its tests check the SRE kit beside it — Prometheus rules in
// prometheus/, the Grafana dashboard in grafana/ — against the metric contract and the runbooks.
//
// scripts/promtool.sh runs promtool on the rules and these tests with -dashboard-rules, which
// writes every dashboard query as a recording rule for promtool to parse.
package deploy
