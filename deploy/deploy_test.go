package deploy_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var dashboardRules = flag.String("dashboard-rules", "",
	"write every dashboard query as a recording rule to this file, for promtool check rules")

const (
	recordingFile = "prometheus/recording.rules.yml"
	alertsFile    = "prometheus/alerts.rules.yml"
	dashboardFile = "grafana/tpwallet.json"
	runbooksDir   = "../docs/runbooks"
)

type rule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type group struct {
	Name  string `yaml:"name"`
	Rules []rule `yaml:"rules"`
}

func readGroups(t *testing.T, path string) []group {
	t.Helper()
	var f struct {
		Groups []group `yaml:"groups"`
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return f.Groups
}

// rules returns every rule of both files, and the names the recording rules record.
func rules(t *testing.T) (all []rule, recorded []string) {
	t.Helper()
	for _, g := range append(readGroups(t, recordingFile), readGroups(t, alertsFile)...) {
		for _, r := range g.Rules {
			all = append(all, r)
			if r.Record != "" {
				recorded = append(recorded, r.Record)
			}
		}
	}
	return all, recorded
}

// checkExpr reports the metric and label names of expr that are neither in the contract
// nor recorded by our rules.
func checkExpr(t *testing.T, where, expr string, ok map[string]bool) {
	t.Helper()
	metrics, labels, err := names(expr)
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	for _, m := range metrics {
		if !ok[m] && !isCollector(m) {
			t.Errorf("%s: metric %s is not in the contract nor recorded by %s", where, m, recordingFile)
		}
	}
	for _, l := range labels {
		if !slices.Contains(contractLabels, l) {
			t.Errorf("%s: label %s is not one the contract's series carry", where, l)
		}
	}
}

// TestRules checks that the rules use only the contract's names, and that every alert has
// a severity, a summary, a description showing its value, and a runbook that exists.
func TestRules(t *testing.T) {
	all, recorded := rules(t)
	ok := known(recorded)
	for _, r := range all {
		checkExpr(t, r.Record+r.Alert, r.Expr, ok)
		if r.Alert == "" {
			continue
		}
		if s := r.Labels["severity"]; s != "page" && s != "ticket" {
			t.Errorf("%s: severity %q, want page or ticket", r.Alert, s)
		}
		if r.Annotations["summary"] == "" {
			t.Errorf("%s: no summary", r.Alert)
		}
		if !strings.Contains(r.Annotations["description"], "$value") &&
			!strings.Contains(r.Expr, "absent(") {
			t.Errorf("%s: the description does not show $value", r.Alert)
		}
		want := "docs/runbooks/" + r.Alert + ".md"
		if got := r.Annotations["runbook_url"]; got != want {
			t.Errorf("%s: runbook_url %q, want %q", r.Alert, got, want)
		}
		if _, err := os.Stat(filepath.Join("..", want)); err != nil {
			t.Errorf("%s: runbook: %v", r.Alert, err)
		}
	}
}

// alertNames returns the distinct alert names, in file order.
func alertNames(t *testing.T) []string {
	all, _ := rules(t)
	var out []string
	for _, r := range all {
		if r.Alert != "" && !slices.Contains(out, r.Alert) {
			out = append(out, r.Alert)
		}
	}
	return out
}

// TestAlertsTested checks that the promtool tests have, for every alert, a case where it
// fires and a case where it stays silent, and that each test file orders every rule group.
func TestAlertsTested(t *testing.T) {
	files, err := filepath.Glob("prometheus/tests/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no promtool tests: %v", err)
	}
	var groups []string
	for _, g := range append(readGroups(t, recordingFile), readGroups(t, alertsFile)...) {
		if slices.Contains(groups, g.Name) {
			t.Errorf("group %s: the name is used twice; group_eval_order could not order them", g.Name)
		}
		groups = append(groups, g.Name)
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, f := range files {
		var tf struct {
			Order []string `yaml:"group_eval_order"`
			Tests []struct {
				AlertRuleTest []struct {
					Alertname string `yaml:"alertname"`
					ExpAlerts []any  `yaml:"exp_alerts"`
				} `yaml:"alert_rule_test"`
			} `yaml:"tests"`
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, &tf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range groups {
			if !slices.Contains(tf.Order, g) {
				t.Errorf("%s: group_eval_order lacks %s (promtool's order is otherwise not fixed)", f, g)
			}
		}
		for _, tc := range tf.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					fires[a.Alertname] = true
				} else {
					silent[a.Alertname] = true
				}
			}
		}
	}
	for _, a := range alertNames(t) {
		if !fires[a] {
			t.Errorf("%s: no promtool test where it fires", a)
		}
		if !silent[a] {
			t.Errorf("%s: no promtool test where it stays silent", a)
		}
	}
}

// TestRunbooks checks that every runbook is an alert's (TestRules checks that every alert
// has one).
func TestRunbooks(t *testing.T) {
	alerts := alertNames(t)
	files, err := filepath.Glob(filepath.Join(runbooksDir, "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if a := strings.TrimSuffix(filepath.Base(f), ".md"); !slices.Contains(alerts, a) {
			t.Errorf("%s: no alert of that name", f)
		}
	}
}

type panel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	GridPos    struct{ X, Y, W, H int }
	Targets    []struct {
		Expr         string          `json:"expr"`
		RefID        string          `json:"refId"`
		LegendFormat string          `json:"legendFormat"`
		Datasource   json.RawMessage `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// The rows the dashboard must have, by a word of their titles.
var wantRows = []string{"SLO", "HTTP API", "Transfers", "Engine", "Holds", "Journal",
	"High availability", "Go runtime"}

const datasourceVar = `{"type":"prometheus","uid":"${datasource}"}`

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s is not valid JSON: %v", dashboardFile, err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard uid %q title %q: want both", d.UID, d.Title)
	}
	return d
}

func flatten(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, flatten(p.Panels)...)
	}
	return out
}

// sameJSON reports whether raw is the JSON value want, whatever the spacing.
func sameJSON(raw json.RawMessage, want string) bool {
	var a, b any
	return json.Unmarshal(raw, &a) == nil && json.Unmarshal([]byte(want), &b) == nil &&
		fmt.Sprint(a) == fmt.Sprint(b)
}

// TestDashboard checks deploy/grafana/tpwallet.json: valid JSON, its data source a
// variable used by every panel and query, the rows wanted, unique panel ids on the
// 24-column grid, and queries that name only the contract's metrics and labels or our
// recorded series.
func TestDashboard(t *testing.T) {
	d := readDashboard(t)
	_, recorded := rules(t)
	ok := known(recorded)
	checkTemplating(t, d, ok)
	ids := map[int]bool{}
	var rows []string
	var queries []query
	for _, p := range flatten(d.Panels) {
		if ids[p.ID] {
			t.Errorf("panel %q: id %d used twice", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v is off the 24-column grid", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			rows = append(rows, p.Title)
			continue
		}
		if !sameJSON(p.Datasource, datasourceVar) {
			t.Errorf("panel %q: datasource %s, want %s", p.Title, p.Datasource, datasourceVar)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no query", p.Title)
		}
		for _, tg := range p.Targets {
			where := fmt.Sprintf("panel %q query %s", p.Title, tg.RefID)
			if tg.Datasource != nil && !sameJSON(tg.Datasource, datasourceVar) {
				t.Errorf("%s: datasource %s, want %s", where, tg.Datasource, datasourceVar)
			}
			checkExpr(t, where, tg.Expr, ok)
			checkLegend(t, where, tg.LegendFormat)
			queries = append(queries, query{fmt.Sprintf("dashboard:p%d:%s", p.ID, tg.RefID), tg.Expr})
		}
	}
	for _, w := range wantRows {
		if !slices.ContainsFunc(rows, func(r string) bool { return strings.Contains(r, w) }) {
			t.Errorf("no row titled with %q; rows: %q", w, rows)
		}
	}
	if *dashboardRules != "" {
		writeQueries(t, *dashboardRules, queries)
	}
}

var legendLabel = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)

func checkLegend(t *testing.T, where, legend string) {
	t.Helper()
	for _, m := range legendLabel.FindAllStringSubmatch(legend, -1) {
		if !slices.Contains(contractLabels, m[1]) {
			t.Errorf("%s: legend names label %s, which no series carries", where, m[1])
		}
	}
}

var labelValues = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// checkTemplating wants a data source variable of type prometheus and label_values
// variables over the contract's series.
func checkTemplating(t *testing.T, d dashboard, ok map[string]bool) {
	t.Helper()
	var ds bool
	for _, v := range d.Templating.List {
		switch v.Type {
		case "datasource":
			ds = ds || v.Name == "datasource" && v.Query == "prometheus"
		case "query":
			q, _ := v.Query.(map[string]any)
			s, _ := q["query"].(string)
			m := labelValues.FindStringSubmatch(s)
			if m == nil {
				t.Errorf("variable %s: query %q, want label_values(<series>, <label>)", v.Name, s)
				continue
			}
			checkExpr(t, "variable "+v.Name, m[1], ok)
			checkLegend(t, "variable "+v.Name, "{{"+m[2]+"}}")
		}
	}
	if !ds {
		t.Errorf("no variable datasource of type datasource over prometheus")
	}
}

type query struct{ name, expr string }

// grafanaSubst turns a dashboard query into PromQL with the values Grafana would give.
var grafanaSubst = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m",
	"$__range", "1h", "$job", "tpwallet", "$instance", ".*")

func writeQueries(t *testing.T, path string, qs []query) {
	t.Helper()
	var rs []map[string]string
	for _, q := range qs {
		rs = append(rs, map[string]string{"record": q.name, "expr": grafanaSubst.Replace(q.expr)})
	}
	doc := map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rs}}}
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestOperationsDoc checks that docs/operations.md's alert tables link every alert's
// runbook, so the page that explains the thresholds lists them all.
func TestOperationsDoc(t *testing.T) {
	ops, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range alertNames(t) {
		if !strings.Contains(string(ops), "["+a+"](runbooks/"+a+".md)") {
			t.Errorf("%s: docs/operations.md does not link its runbook", a)
		}
	}
}
