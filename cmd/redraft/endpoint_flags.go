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
type endpointFlags struct{ url, model *string }

func addEndpointFlags(fs *flag.FlagSet) endpointFlags {
	return endpointFlags{
		url:   fs.String("endpoint", "", "OpenAI-compatible base `URL` (ending in /v1) to generate from, instead of the configuration's endpoint.base_url or base_urls"),
		model: fs.String("model", "", "model `name` to request, instead of the configuration's endpoint.model (it is part of the run's identity; the URL is not)"),
	}
}

// apply overrides cfg's endpoint and checks the result as the
// configuration's own endpoint section is checked.
func (e endpointFlags) apply(cfg *pipeline.Config) error {
	url, model := strings.TrimSpace(*e.url), strings.TrimSpace(*e.model)
	if url == "" && model == "" {
		return nil
	}
	if cfg.Endpoint == nil {
		return usageError{"--endpoint and --model replace the configuration's endpoint section, and it has none (it generates nothing)"}
	}
	if url != "" {
		cfg.Endpoint.BaseURL, cfg.Endpoint.BaseURLs = url, nil
	}
	if model != "" {
		cfg.Endpoint.Model = model
	}
	if err := cfg.Endpoint.Validate("endpoint", rollout.PolicyDefaults); err != nil {
		return usageError{fmt.Sprintf("--endpoint/--model: %v", err)}
	}
	return nil
}
