package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/redraft/redraft/pipeline"
	"github.com/redraft/redraft/rollout"
)

// endpointFlags are run's --endpoint and --model: they point a
// configuration's endpoint section (the policy that generates) at another
// server without editing its YAML, for example a preset at the local model
// scripts/local-model.sh starts. Judges, critics and Agent-R's step judge
// keep their own endpoints.
type endpointFlags struct {
	url, model *string
	inFlight   *int
}

func addEndpointFlags(fs *flag.FlagSet) endpointFlags {
	return endpointFlags{
		url:      fs.String("endpoint", "", "OpenAI-compatible base `URL` (ending in /v1) to generate from, instead of the configuration's endpoint.base_url or base_urls"),
		model:    fs.String("model", "", "model `name` to request, instead of the configuration's endpoint.model (it is part of the run's identity; the URL is not)"),
		inFlight: fs.Int("max-in-flight", 0, "requests outstanding at once, instead of the configuration's endpoint.max_in_flight: a small server's slots (scripts/local-model.sh serves 4), so that requests do not wait in its queue past endpoint.sample_timeout"),
	}
}

// apply overrides cfg's endpoint and checks the result as the
// configuration's own endpoint section is checked.
func (e endpointFlags) apply(cfg *pipeline.Config) error {
	url, model := strings.TrimSpace(*e.url), strings.TrimSpace(*e.model)
	if *e.inFlight < 0 {
		return usageError{"--max-in-flight must be at least 1"}
	}
	if url == "" && model == "" && *e.inFlight == 0 {
		return nil
	}
	if cfg.Endpoint == nil {
		return usageError{"--endpoint, --model and --max-in-flight replace settings of the configuration's endpoint section, and it has none (it generates nothing)"}
	}
	if *e.inFlight > 0 {
		cfg.Endpoint.MaxInFlight = *e.inFlight
	}
	if url != "" {
		cfg.Endpoint.BaseURL, cfg.Endpoint.BaseURLs = url, nil
	}
	if model != "" {
		cfg.Endpoint.Model = model
	}
	if err := cfg.Endpoint.Validate("endpoint", rollout.PolicyDefaults); err != nil {
		return usageError{fmt.Sprintf("--endpoint/--model/--max-in-flight: %v", err)}
	}
	return nil
}
