package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Load reads a YAML config file over the defaults. Unknown keys and values of
// the wrong type are reported together with their paths, then Validate runs;
// the returned error is a Problems listing everything found.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("resolve config directory of %s: %w", path, err)
	}
	return Parse(data, dir)
}

// Parse decodes YAML config data; relative paths in it are resolved against dir.
func Parse(data []byte, dir string) (*Config, error) {
	c := Default()
	c.dir = dir
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, Problems{{Path: "(file)", Msg: "not valid YAML: " + err.Error()}}
	}
	if len(root.Content) == 0 { // empty file: all defaults
		if ps := c.Validate(); len(ps) > 0 {
			return nil, ps
		}
		return c, nil
	}
	var ps Problems
	lines := map[int]string{}
	walk(root.Content[0], reflect.TypeOf(*c), "", lines, &ps)

	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(c); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, msg := range te.Errors {
				ps = append(ps, typeProblem(msg, lines))
			}
		} else {
			ps = append(ps, Problem{Path: "(file)", Msg: err.Error()})
		}
	}
	ps = append(ps, c.Validate()...)
	if len(ps) > 0 {
		sort.SliceStable(ps, func(i, j int) bool { return ps[i].Path < ps[j].Path })
		return nil, ps
	}
	return c, nil
}

var lineRe = regexp.MustCompile(`^line (\d+): (.*)$`)

func typeProblem(msg string, lines map[int]string) Problem {
	if m := lineRe.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		if p, ok := lines[n]; ok {
			return Problem{Path: p, Msg: m[2]}
		}
		return Problem{Path: "line " + m[1], Msg: m[2]}
	}
	return Problem{Path: "(file)", Msg: msg}
}

// walk checks every mapping key against the struct it decodes into, so an
// unknown (for example misspelt) key is an error with its full path rather
// than silently ignored.
func walk(n *yaml.Node, t reflect.Type, path string, lines map[int]string, ps *Problems) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if path != "" {
		lines[n.Line] = path
	}
	switch n.Kind {
	case yaml.AliasNode:
		walk(n.Alias, t, path, lines, ps)
	case yaml.MappingNode:
		if t.Kind() != reflect.Struct {
			return // type errors are reported by the decoder
		}
		fields := map[string]reflect.StructField{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if tag := strings.Split(f.Tag.Get("yaml"), ",")[0]; tag != "" && tag != "-" {
				fields[tag] = f
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			lines[k.Line] = p
			f, ok := fields[k.Value]
			if !ok {
				*ps = append(*ps, Problem{Path: p, Msg: "unknown key" + suggest(k.Value, fields)})
				continue
			}
			if f.Type == reflect.TypeOf(time.Duration(0)) || f.Type == reflect.TypeOf(ByteSize(0)) {
				lines[v.Line] = p
				continue
			}
			walk(v, f.Type, p, lines, ps)
		}
	case yaml.SequenceNode:
		if t.Kind() != reflect.Slice {
			return
		}
		for i, c := range n.Content {
			walk(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), lines, ps)
		}
	}
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

func suggest(k string, fields map[string]reflect.StructField) string {
	var names []string
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	norm := func(s string) string { return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(s)) }
	for _, n := range names {
		if d := editDistance(norm(n), norm(k)); d <= 2 && d <= len(n)/2 {
			return fmt.Sprintf(" (did you mean %q?)", n)
		}
	}
	return " (known keys: " + strings.Join(names, ", ") + ")"
}

// ByteSize is a size in bytes that YAML may give as a number or with a unit
// (KiB, MiB, GiB, KB, MB, GB).
type ByteSize int64

var sizeRe = regexp.MustCompile(`^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]i?B|B)?\s*$`)

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if err != nil {
		// A TypeError lets the decoder carry on and report the other problems too.
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*b = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// ParseByteSize parses "512MiB", "1GB", "1048576".
func ParseByteSize(s string) (ByteSize, error) {
	m := sizeRe.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("cannot parse %q as a size (use e.g. 512MiB)", s)
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("cannot parse %q as a size: %w", s, err)
	}
	mult := map[string]float64{"": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
		"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}[m[2]]
	return ByteSize(f * mult), nil
}

func (b ByteSize) String() string {
	for _, u := range []struct {
		n string
		v int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if int64(b) >= u.v && int64(b)%u.v == 0 {
			return fmt.Sprintf("%d%s", int64(b)/u.v, u.n)
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// Marshal renders a config as YAML (used by check-config -print).
func Marshal(c *Config) ([]byte, error) {
	return yaml.Marshal(c)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
