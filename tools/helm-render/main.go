// helm-render: renders a Helm chart the way `helm template` does, for validating
// deploy/helm/kubenetprobe offline where no helm binary can be installed (helm is in neither
// Debian's archive nor the npm registry as a package that works without downloading).
//
// It uses what Helm's engine uses: Go's text/template with the Sprig function library (Debian's
// golang-github-masterminds-sprig-dev), minus env/expandenv as in Helm, plus Helm's own
// functions: include, tpl, required, toYaml, fromYaml, fromYamlArray, toJson, fromJson,
// fromJsonArray, lookup (always empty, as in `helm template`). Values are read as Helm reads
// them (YAML converted through JSON, so numbers are float64), merged with -f files and --set
// key=value (dotted keys; true/false/null/integers typed, the rest strings). Built-in objects:
// .Values, .Release (Name, Namespace, Service "Helm", IsInstall, IsUpgrade, Revision 1),
// .Chart (Chart.yaml, capitalised), .Capabilities (KubeVersion, APIVersions.Has), .Template.
// Templates named _* are partials; NOTES.txt is rendered only with --notes. As `helm template`,
// each output is printed as "---\n# Source: CHART/templates/FILE\n..." and empty ones are left
// out. Not supported (the chart does not use them): subcharts, .Files, values.schema.json,
// --set with lists or escaped dots, hooks ordering.
//
// Build (Debian: apt-get install golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v2-dev):
//   GO111MODULE=off GOPATH=/usr/share/gocode go build -o build/helm-render ./tools/helm-render
// Use:
//   build/helm-render [--notes] [--name R] [--namespace NS] [--api-versions G/V] [-f values.yaml] [--set k=v] CHART_DIR
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	yaml2 "gopkg.in/yaml.v2"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "helm-render: "+format+"\n", a...)
	os.Exit(1)
}

// readYAML reads YAML the way sigs.k8s.io/yaml does: to JSON, then into Go values.
func readYAML(data []byte) (map[string]interface{}, error) {
	var raw interface{}
	if err := yaml2.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	j, err := json.Marshal(toJSONable(raw))
	if err != nil {
		return nil, err
	}
	out := map[string]interface{}{}
	if string(j) == "null" {
		return out, nil
	}
	if err := json.Unmarshal(j, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func toJSONable(v interface{}) interface{} {
	switch t := v.(type) {
	case map[interface{}]interface{}:
		m := map[string]interface{}{}
		for k, val := range t {
			m[fmt.Sprint(k)] = toJSONable(val)
		}
		return m
	case []interface{}:
		for i := range t {
			t[i] = toJSONable(t[i])
		}
		return t
	}
	return v
}

func mergeValues(dst, src map[string]interface{}) {
	for k, v := range src {
		if sm, ok := v.(map[string]interface{}); ok {
			if dm, ok := dst[k].(map[string]interface{}); ok {
				mergeValues(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

func setValue(values map[string]interface{}, expr string) error {
	eq := strings.IndexByte(expr, '=')
	if eq <= 0 {
		return fmt.Errorf("--set %q: expected key=value", expr)
	}
	keys := strings.Split(expr[:eq], ".")
	raw := expr[eq+1:]
	var val interface{} = raw
	switch {
	case raw == "true":
		val = true
	case raw == "false":
		val = false
	case raw == "null":
		val = nil
	default:
		if n, err := strconv.ParseInt(raw, 10, 64); err == nil {
			val = n
		}
	}
	m := values
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]interface{})
		if !ok {
			next = map[string]interface{}{}
			m[k] = next
		}
		m = next
	}
	m[keys[len(keys)-1]] = val
	return nil
}

// toYAML is Helm's toYaml: sigs.k8s.io/yaml.Marshal (JSON, then YAML through yaml.v2).
func toYAML(v interface{}) string {
	j, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	var ms yaml2.MapSlice
	var out []byte
	if err := yaml2.Unmarshal(j, &ms); err == nil && len(j) > 0 && j[0] == '{' {
		out, err = yaml2.Marshal(ms)
		if err != nil {
			return ""
		}
	} else {
		var any interface{}
		if err := yaml2.Unmarshal(j, &any); err != nil {
			return ""
		}
		out, err = yaml2.Marshal(any)
		if err != nil {
			return ""
		}
	}
	return strings.TrimSuffix(string(out), "\n")
}

type apiVersions []string

func (a apiVersions) Has(v string) bool {
	for _, x := range a {
		if x == v {
			return true
		}
	}
	return false
}

func main() {
	var valueFiles, sets, apis multi
	name, namespace, kubeVersion := "release-name", "default", "v1.34.0"
	notes := false
	var chartDir string
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		next := func() string {
			if i+1 >= len(args) {
				fail("%s needs a value", args[i])
			}
			i++
			return args[i]
		}
		switch args[i] {
		case "-f", "--values":
			valueFiles.Set(next())
		case "--set":
			sets.Set(next())
		case "--name":
			name = next()
		case "-n", "--namespace":
			namespace = next()
		case "-a", "--api-versions":
			apis.Set(next())
		case "--kube-version":
			kubeVersion = next()
		case "--notes":
			notes = true
		default:
			if strings.HasPrefix(args[i], "-") {
				fail("unknown flag %s", args[i])
			}
			chartDir = args[i]
		}
	}
	if chartDir == "" {
		fail("usage: helm-render [flags] CHART_DIR")
	}

	chartBytes, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		fail("%v", err)
	}
	chartRaw, err := readYAML(chartBytes)
	if err != nil {
		fail("Chart.yaml: %v", err)
	}
	chart := map[string]interface{}{}
	for k, v := range chartRaw {
		chart[strings.ToUpper(k[:1])+k[1:]] = v
	}
	chartName, _ := chart["Name"].(string)
	if chartName == "" {
		fail("Chart.yaml: no name")
	}

	values := map[string]interface{}{}
	if b, err := os.ReadFile(filepath.Join(chartDir, "values.yaml")); err == nil {
		if values, err = readYAML(b); err != nil {
			fail("values.yaml: %v", err)
		}
	}
	for _, f := range valueFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			fail("%v", err)
		}
		extra, err := readYAML(b)
		if err != nil {
			fail("%s: %v", f, err)
		}
		mergeValues(values, extra)
	}
	for _, s := range sets {
		if err := setValue(values, s); err != nil {
			fail("%v", err)
		}
	}

	kv := strings.TrimPrefix(kubeVersion, "v")
	parts := strings.SplitN(kv, ".", 3)
	for len(parts) < 3 {
		parts = append(parts, "0")
	}
	builtinAPIs := apiVersions{"v1", "apps/v1", "batch/v1", "rbac.authorization.k8s.io/v1", "networking.k8s.io/v1", "discovery.k8s.io/v1", "policy/v1"}
	builtinAPIs = append(builtinAPIs, apis...)
	top := map[string]interface{}{
		"Values": values,
		"Release": map[string]interface{}{
			"Name": name, "Namespace": namespace, "Service": "Helm",
			"IsInstall": true, "IsUpgrade": false, "Revision": 1,
		},
		"Chart": chart,
		"Capabilities": map[string]interface{}{
			"KubeVersion": map[string]interface{}{
				"Version": "v" + kv, "GitVersion": "v" + kv, "Major": parts[0], "Minor": parts[1],
			},
			"APIVersions": builtinAPIs,
		},
	}

	tdir := filepath.Join(chartDir, "templates")
	entries, err := os.ReadDir(tdir)
	if err != nil {
		fail("%v", err)
	}
	root := template.New("gotpl").Option("missingkey=zero")
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env")
	delete(funcs, "expandenv")
	includedNames := map[string]int{}
	funcs["include"] = func(n string, data interface{}) (string, error) {
		if includedNames[n] > 1000 {
			return "", fmt.Errorf("rendering template has a nested reference name: %s", n)
		}
		includedNames[n]++
		var buf bytes.Buffer
		err := root.ExecuteTemplate(&buf, n, data)
		includedNames[n]--
		return buf.String(), err
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := root.Clone()
		if err != nil {
			return "", err
		}
		t, err = t.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var buf bytes.Buffer
		err = t.Execute(&buf, data)
		return strings.ReplaceAll(buf.String(), "<no value>", ""), err
	}
	funcs["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return v, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return v, errors.New(msg)
		}
		return v, nil
	}
	funcs["toYaml"] = toYAML
	funcs["toJson"] = func(v interface{}) string {
		b, err := json.Marshal(v)
		if err != nil {
			return ""
		}
		return string(b)
	}
	funcs["fromYaml"] = func(s string) map[string]interface{} {
		m, err := readYAML([]byte(s))
		if err != nil {
			return map[string]interface{}{"Error": err.Error()}
		}
		return m
	}
	funcs["fromYamlArray"] = func(s string) []interface{} {
		var raw interface{}
		if err := yaml2.Unmarshal([]byte(s), &raw); err != nil {
			return []interface{}{err.Error()}
		}
		a, _ := toJSONable(raw).([]interface{})
		return a
	}
	funcs["fromJson"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	funcs["fromJsonArray"] = func(s string) []interface{} {
		var a []interface{}
		if err := json.Unmarshal([]byte(s), &a); err != nil {
			return []interface{}{err.Error()}
		}
		return a
	}
	funcs["lookup"] = func(string, string, string, string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	root.Funcs(funcs)

	var names []string
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		n := e.Name()
		b, err := os.ReadFile(filepath.Join(tdir, n))
		if err != nil {
			fail("%v", err)
		}
		full := chartName + "/templates/" + n
		if _, err := root.New(full).Parse(string(b)); err != nil {
			fail("parse %s: %v", full, err)
		}
		names = append(names, full)
	}
	sort.Strings(names)

	var out bytes.Buffer
	for _, full := range names {
		base := filepath.Base(full)
		isNotes := base == "NOTES.txt"
		if strings.HasPrefix(base, "_") || isNotes != notes {
			continue
		}
		data := map[string]interface{}{}
		for k, v := range top {
			data[k] = v
		}
		data["Template"] = map[string]interface{}{"Name": full, "BasePath": chartName + "/templates"}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, full, data); err != nil {
			fail("render %s: %v", full, err)
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if strings.TrimSpace(text) == "" {
			continue
		}
		if notes {
			out.WriteString(text)
			continue
		}
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", full, strings.TrimRight(text, "\n"))
	}
	os.Stdout.Write(out.Bytes())
}
