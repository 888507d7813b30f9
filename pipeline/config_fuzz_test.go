package pipeline

import (
	"strings"
	"testing"
)

// FuzzParseConfig feeds arbitrary YAML to ParseConfig: it must return a
// configuration or an error, never panic, and an accepted configuration
// must validate (what loads is what runs).
func FuzzParseConfig(f *testing.F) {
	for _, seed := range []string{
		"source: {kind: rollouts, path: x}\noutput: {dir: o}\n",
		"source: {kind: tasks, path: t}\nendpoint: {base_url: http://h/v1, model: m}\nsampling: {n: 4, temperature: 0.7}\noutput: {dir: o}\n",
		"advantage:\n  estimater: grpo\n",
		"nmae: x\nreward:\n  judges:\n    - {name: a, modle: m}\n",
		"splice: {format: prm800k, input: x}\noutput: {dir: o, shard_rows: 0}\n",
		"a: &a [*a, *a]\n",
		"output: {dir: o}\nsource: {kind: rollouts, path: x, max_line_bytes: 1KiB}\nendpoint: {timeout: 5x}\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, src string) {
		c, err := ParseConfig("f.yaml", strings.NewReader(src))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("ParseConfig accepted a configuration that Validate refuses: %v\n%s", err, src)
		}
	})
}
