package plugin

import (
	"sort"
	"strings"
)

// passThrough are the host variables every plug-in gets, when set; any
// variable whose name starts with PYTHON passes too.
var passThrough = []string{"PATH", "HOME", "LANG"}

// childEnv is a plug-in's environment: from host (os.Environ's form) only
// PATH, HOME, LANG and PYTHON*, then the config's entries (NAME passes the
// host's value through when set, NAME=VALUE sets it; later entries win).
// Nothing else of the host's reaches the plug-in: no API key, no token.
func childEnv(host, extra []string) []string {
	hostVal := map[string]string{}
	for _, kv := range host {
		if k, v, ok := strings.Cut(kv, "="); ok {
			hostVal[k] = v
		}
	}
	env := map[string]string{}
	for k, v := range hostVal {
		if strings.HasPrefix(k, "PYTHON") {
			env[k] = v
		}
	}
	for _, k := range passThrough {
		if v, ok := hostVal[k]; ok {
			env[k] = v
		}
	}
	for _, e := range extra {
		if k, v, ok := strings.Cut(e, "="); ok {
			env[k] = v
		} else if v, ok := hostVal[e]; ok {
			env[e] = v
		}
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
