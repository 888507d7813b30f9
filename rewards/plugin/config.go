package plugin

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redraft/redraft/internal/redact"
	"github.com/redraft/redraft/rollout"
)

// Config is one verifier's settings: a command to run (the subprocess
// transport) or a URL to POST to (the HTTP transport), exactly one of the
// two. ApplyDefaults fills what a file leaves out, Validate checks it.
type Config struct {
	// Command is the plug-in's program and arguments (subprocess
	// transport). A relative program path with a slash is taken relative
	// to Dir.
	Command []string `yaml:"command" json:"command,omitempty"`
	// Dir is the plug-in's working directory ("": redraft's).
	Dir string `yaml:"dir" json:"dir,omitempty"`
	// Env adds to the plug-in's minimal environment: NAME passes the
	// host's variable through (when set), NAME=VALUE sets it.
	Env []string `yaml:"env" json:"env,omitempty"`
	// URL is the verifier's endpoint (HTTP transport).
	URL string `yaml:"url" json:"url,omitempty"`
	// APIKeyEnv names an environment variable whose value is sent as
	// "Authorization: Bearer <value>" (HTTP only; "": no header).
	APIKeyEnv string `yaml:"api_key_env" json:"api_key_env,omitempty"`
	// Timeout bounds one request's wait for its answer once written to the
	// plug-in, or one POST.
	Timeout rollout.Duration `yaml:"timeout" json:"timeout"`
	// StartTimeout bounds the handshake.
	StartTimeout rollout.Duration `yaml:"start_timeout" json:"start_timeout"`
	// Batch is the most requests outstanding on one plug-in process (its
	// window), or the most requests in one POST.
	Batch int `yaml:"batch" json:"batch"`
	// Concurrency is the number of plug-in processes, or of POSTs in
	// flight at once.
	Concurrency int `yaml:"concurrency" json:"concurrency"`
	// Retries is the most attempts per POST, the first included (1 never
	// retries). HTTP only.
	Retries int `yaml:"retries" json:"retries"`
	// Restarts is the most restarts in a row of a plug-in process that
	// answers nothing before it exits; 0 means the default, a negative
	// number never restarts. Subprocess only.
	Restarts int `yaml:"restarts" json:"restarts"`
}

// Defaults of the keys a configuration leaves out.
const (
	DefaultTimeout         = 60 * time.Second
	DefaultStartTimeout    = 60 * time.Second
	DefaultBatch           = 32
	DefaultProcConcurrency = 1 // plug-in processes
	DefaultHTTPConcurrency = 4 // POSTs in flight
	DefaultRetries         = 3
	DefaultRestarts        = 5
)

// Backoff before a retried POST (uniform in [0, min(backoffMax,
// backoffInitial*2^(k-1))]) and before restarting a plug-in that exited
// (min(backoffMax, backoffInitial*2^k) after k exits in a row without an
// answer).
const (
	backoffInitial = 200 * time.Millisecond
	backoffMax     = 10 * time.Second
)

// closeGrace is how long Close waits for a plug-in to exit after its stdin
// closes before killing it.
const closeGrace = 5 * time.Second

// ApplyDefaults fills the settings left at zero.
func (c *Config) ApplyDefaults() {
	if c.Timeout == 0 {
		c.Timeout = rollout.Duration(DefaultTimeout)
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = rollout.Duration(DefaultStartTimeout)
	}
	if c.Batch == 0 {
		c.Batch = DefaultBatch
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultProcConcurrency
		if c.URL != "" {
			c.Concurrency = DefaultHTTPConcurrency
		}
	}
	if c.Retries == 0 {
		c.Retries = DefaultRetries
	}
	if c.Restarts == 0 {
		c.Restarts = DefaultRestarts
	}
}

// Validate checks the settings of the section named section (its keys are
// named section.key). Its error is a *rollout.KeyError; a URL is quoted
// without its credentials.
func (c *Config) Validate(section string) error {
	key := func(k string) string {
		if section == "" {
			return k
		}
		return section + "." + k
	}
	bad := func(k, format string, args ...any) error {
		return &rollout.KeyError{Key: key(k), Err: fmt.Errorf(format, args...)}
	}
	switch {
	case len(c.Command) == 0 && c.URL == "":
		return bad("command", "missing: give the plug-in's command, or a url")
	case len(c.Command) > 0 && c.URL != "":
		return &rollout.KeyError{Key: section, Err: fmt.Errorf("give command or url, not both")}
	case len(c.Command) > 0 && c.Command[0] == "":
		return bad("command", "the program (the first word) is empty")
	}
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("url", "%q is not an http(s) URL", redact.URL(c.URL))
		}
		if len(c.Env) > 0 || c.Dir != "" {
			return bad("env", "env and dir are for a command, not a url")
		}
	}
	if c.APIKeyEnv != "" {
		if c.URL == "" {
			return bad("api_key_env", "only for a url (a command gets variables through env)")
		}
		if !redact.IsEnvName(c.APIKeyEnv) {
			return bad("api_key_env", "not an environment variable name (the value is not shown in case it is a key): name the variable that holds the key")
		}
	}
	for i, e := range c.Env {
		name, _, _ := strings.Cut(e, "=")
		if !redact.IsEnvName(name) {
			return &rollout.KeyError{Key: key("env"), At: fmt.Sprintf("%s[%d]", key("env"), i),
				Err: fmt.Errorf("entry %d: want NAME or NAME=VALUE, the name of letters, digits and _", i)}
		}
	}
	switch {
	case c.Timeout <= 0:
		return bad("timeout", "must be > 0, got %s", c.Timeout)
	case c.StartTimeout <= 0:
		return bad("start_timeout", "must be > 0, got %s", c.StartTimeout)
	case c.Batch < 1:
		return bad("batch", "must be at least 1, got %d", c.Batch)
	case c.Concurrency < 1:
		return bad("concurrency", "must be at least 1, got %d", c.Concurrency)
	case c.Retries < 1:
		return bad("retries", "must be at least 1 (the first attempt), got %d", c.Retries)
	}
	return nil
}
