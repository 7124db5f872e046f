// Command gen prints what Go's text/template, with docker/cli's template functions, makes of each
// case in ../cases.json (the output or the error text), and what Go's tabwriter, set up as docker/cli
// sets it up for tables, makes of each tabwriter input. Its output is committed as
// ../vectors.json, which the TypeScript engine is tested against (the tests never run Go).
//
//	cd test/cli/template/gen && go run . < ../cases.json > ../vectors.json
package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"text/tabwriter"
	"text/template"
)

// The functions docker/cli's templates package adds (cli/templates/templates.go).
var basicFunctions = template.FuncMap{
	"json": func(v interface{}) string {
		buf := &bytes.Buffer{}
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(v)
		return strings.TrimSpace(buf.String())
	},
	"split": strings.Split,
	"join":  strings.Join,
	"title": strings.Title, //nolint:staticcheck // what docker uses
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"pad": func(source string, prefix, suffix int) string {
		if source == "" {
			return source
		}
		return strings.Repeat(" ", prefix) + source + strings.Repeat(" ", suffix)
	},
	"truncate": func(source string, length int) string {
		if len(source) < length {
			return source
		}
		return source[:length]
	},
}

type input struct {
	Data      json.RawMessage `json:"data"`
	Cases     []tcase         `json:"cases"`
	Tabwriter []string        `json:"tabwriter"`
}

type tabVector struct {
	In  string `json:"in"`
	Out string `json:"out"`
}

type tcase struct {
	Name       string          `json:"name"`
	Tpl        string          `json:"tpl"`
	Data       json.RawMessage `json:"data,omitempty"`
	MissingKey string          `json:"missingkey,omitempty"`
}

type vector struct {
	tcase
	Out   *string `json:"out,omitempty"`
	Error string  `json:"error,omitempty"`
	Phase string  `json:"phase,omitempty"`
}

// convert makes decoded JSON look like the values Docker's templates see: integral numbers are
// ints, arrays of strings are []string, other arrays exact-capacity []interface{}.
func convert(v interface{}) interface{} {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return int(i)
		}
		f, _ := x.Float64()
		if f == float64(int64(f)) {
			return int(f)
		}
		return f
	case []interface{}:
		allStrings := len(x) > 0
		for _, e := range x {
			if _, ok := e.(string); !ok {
				allStrings = false
			}
		}
		if allStrings {
			out := make([]string, len(x))
			for i, e := range x {
				out[i] = e.(string)
			}
			return out
		}
		out := make([]interface{}, len(x))
		for i, e := range x {
			out[i] = convert(e)
		}
		return out
	case map[string]interface{}:
		out := make(map[string]interface{}, len(x))
		for k, e := range x {
			out[k] = convert(e)
		}
		return out
	}
	return v
}

func decode(raw json.RawMessage) interface{} {
	var v interface{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		panic(err)
	}
	return convert(v)
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		panic(err)
	}
	def := decode(in.Data)
	out := struct {
		Data      json.RawMessage `json:"data"`
		Vectors   []vector        `json:"vectors"`
		Tabwriter []tabVector     `json:"tabwriter"`
	}{Data: in.Data}
	// Tables as docker/cli writes them: tabwriter.NewWriter(out, 10, 1, 3, ' ', 0).
	for _, text := range in.Tabwriter {
		var buf bytes.Buffer
		w := tabwriter.NewWriter(&buf, 10, 1, 3, ' ', 0)
		_, _ = w.Write([]byte(text))
		_ = w.Flush()
		out.Tabwriter = append(out.Tabwriter, tabVector{In: text, Out: buf.String()})
	}
	for _, c := range in.Cases {
		v := vector{tcase: c}
		data := def
		if c.Data != nil {
			data = decode(c.Data)
		}
		t := template.New("").Funcs(basicFunctions)
		if c.MissingKey != "" {
			t = t.Option("missingkey=" + c.MissingKey)
		}
		t, err := t.Parse(c.Tpl)
		if err != nil {
			v.Error, v.Phase = err.Error(), "parse"
		} else {
			var buf bytes.Buffer
			if err := t.Execute(&buf, data); err != nil {
				v.Error, v.Phase = err.Error(), "exec"
			} else {
				s := buf.String()
				v.Out = &s
			}
		}
		out.Vectors = append(out.Vectors, v)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(out); err != nil {
		panic(err)
	}
}
