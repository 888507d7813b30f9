package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/internal/redact"
	"github.com/redraft/redraft/pipeline"
	"github.com/redraft/redraft/pipeline/splice"
	"github.com/redraft/redraft/rollout"
)

// cmdSplice runs a splicing job from flags: they fill a configuration's
// splice, endpoint, sampling and output sections, which then run exactly as
// a configuration file with those settings would under redraft run (same
// harness, journal, resume and manifest).
func cmdSplice(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("splice", "--format prm800k|mr-gsm8k --input FILE --out DIR [flags]", spliceAbout, stdout)
	sp := &pipeline.SpliceConfig{}
	ep := &rollout.EndpointConfig{}
	fs.StringVar(&sp.Format, "format", "", "input format: prm800k (no model) or mr-gsm8k (needs --endpoint and --model)")
	fs.StringVar(&sp.Input, "input", "", "input `file` (JSONL, optionally .gz)")
	out := fs.String("out", "", "output `directory`")
	overwrite := fs.Bool("overwrite", false, "replace a previous output in the directory (start over instead of resuming)")
	fs.StringVar(&sp.Tokenizer, "tokenizer", "", "Hugging Face tokenizer.json `file`: also write input_ids, labels and attention_mask (sft/2)")
	fs.StringVar(&sp.ChatFormat, "chat-format", "chatml", "chat format for the token track: chatml, qwen3 or llama3")
	fs.StringVar(&ep.BaseURL, "endpoint", "", "mr-gsm8k: OpenAI-compatible base `URL` (ending in /v1) that writes the corrected continuations")
	fs.StringVar(&ep.Model, "model", "", "mr-gsm8k: model `name` to request")
	fs.StringVar(&ep.APIKeyEnv, "api-key-env", "OPENAI_API_KEY", "mr-gsm8k: environment `variable` holding the API key")
	fs.StringVar(&sp.Continuation, "continuation", rollout.ContinueAuto, "mr-gsm8k: how to ask for the continuation: prefill (continue_final_message), user-turn, or auto (prefill, a user turn after a 400)")
	fs.StringVar(&sp.ContinueInstruction, "continue-instruction", "", "mr-gsm8k: the user turn of user-turn continuations (default: "+rollout.DefaultContinueInstruction+")")
	fs.StringVar(&sp.Reflection, "reflection", splice.ReflectionPool, "mr-gsm8k: reflection text: pool, or label-reason (a pool opener followed by the annotator's first-error reason)")
	reflFile := fs.String("reflections", "", "`file` of reflection texts, one per line (default: the built-in pool)")
	fs.BoolVar(&sp.MaskPrefix, "mask-prefix", false, "mr-gsm8k: mask the correct steps before the error too (default: trained, as in STeP)")
	grade := fs.Bool("grade", true, "mr-gsm8k: grade the continuation against the reference answer (metadata grade, reward 1/0)")
	fs.StringVar(&sp.Keep, "keep", splice.KeepCorrect, "correct (only trajectories whose corrected solution is graded correct against the reference, where one exists) or all")
	seed := fs.Int64("seed", 0, "mr-gsm8k: run seed; request seeds and reflection picks derive from it")
	temp := float64NoDefault(fs, "temperature", "mr-gsm8k: sampling temperature (default: the server's)")
	maxTok := fs.Int("max-tokens", 0, "mr-gsm8k: most tokens per continuation (default: the server's)")
	fs.IntVar(&ep.MaxInFlight, "concurrency", 16, "mr-gsm8k: records in flight")
	timeout := fs.Duration("timeout", 10*time.Minute, "mr-gsm8k: bound on one request attempt")
	shardSpec := fs.String("shard", "", "splice one shard of the records: i/N, auto or auto/N (see redraft run --shard)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	given := setFlags(fs)
	switch {
	case fs.NArg() > 0:
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	case sp.Format != "prm800k" && sp.Format != "mr-gsm8k":
		return usageError{fmt.Sprintf("--format %q: want prm800k or mr-gsm8k (Agent-R runs through redraft run with an agent_r section, see configs/presets/agent-r.yaml)", sp.Format)}
	case sp.Input == "" || *out == "":
		return usageError{"--input and --out are required"}
	case sp.Format == "mr-gsm8k" && (ep.BaseURL == "" || ep.Model == ""):
		return usageError{"--format mr-gsm8k needs --endpoint URL and --model NAME: the corrected continuations are written by a model"}
	case !redact.IsEnvName(ep.APIKeyEnv):
		// Not quoted: it is likely the key itself.
		return usageError{"--api-key-env: not an environment variable name (letters, digits and _; the value is not shown in case it is a key): put the API key in the environment and name its variable here"}
	case given["temperature"] && !(*temp >= 0 && !math.IsInf(*temp, 0)):
		return usageError{fmt.Sprintf("--temperature %v: want a finite number >= 0 (leave the flag out for the server's default)", *temp)}
	case given["max-tokens"] && *maxTok < 1:
		return usageError{fmt.Sprintf("--max-tokens %d: want at least 1 (leave the flag out for the server's default)", *maxTok)}
	case ep.MaxInFlight < 1:
		return usageError{"--concurrency: must be at least 1"}
	}
	if *reflFile != "" {
		b, err := os.ReadFile(*reflFile)
		if err != nil {
			return fmt.Errorf("--reflections: %w", err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				sp.Reflections = append(sp.Reflections, l)
			}
		}
		if len(sp.Reflections) == 0 {
			return fmt.Errorf("--reflections: %s holds no reflection", *reflFile)
		}
	}
	shard, err := parseShard(*shardSpec, os.Getenv)
	if err != nil {
		return usageError{err.Error()}
	}

	// The flags become the configuration's keys: a flag given sets its key,
	// and a flag left out leaves its key to the configuration's default
	// (the same as the flag's), so that a splice has the identity of the
	// configuration file with the same settings. A model's flag given to a
	// splice without a model is refused by its key.
	cfg := &pipeline.Config{Seed: *seed, Splice: &pipeline.SpliceConfig{Format: sp.Format, Input: sp.Input}, Output: pipeline.OutputConfig{Dir: *out}}
	set := []string{"splice.format", "splice.input", "output.dir"}
	keys := []struct {
		flag, key string
		apply     func()
	}{
		{"tokenizer", "splice.tokenizer", func() { cfg.Splice.Tokenizer = sp.Tokenizer }},
		{"chat-format", "splice.chat_format", func() { cfg.Splice.ChatFormat = sp.ChatFormat }},
		{"reflections", "splice.reflections", func() { cfg.Splice.Reflections = sp.Reflections }},
		{"seed", "seed", func() {}},
		{"continuation", "splice.continuation", func() { cfg.Splice.Continuation = sp.Continuation }},
		{"continue-instruction", "splice.continue_instruction", func() { cfg.Splice.ContinueInstruction = sp.ContinueInstruction }},
		{"reflection", "splice.reflection", func() { cfg.Splice.Reflection = sp.Reflection }},
		{"mask-prefix", "splice.mask_prefix", func() { cfg.Splice.MaskPrefix = sp.MaskPrefix }},
		{"grade", "splice.grade", func() { cfg.Splice.Grade = grade }},
		{"keep", "splice.keep", func() { cfg.Splice.Keep = sp.Keep }},
		{"endpoint", "endpoint.base_url", func() {}},
		{"model", "endpoint.model", func() {}},
		{"api-key-env", "endpoint.api_key_env", func() {}},
		{"concurrency", "endpoint.max_in_flight", func() {}},
		{"timeout", "endpoint.timeout", func() { ep.Timeout = pipeline.Duration(*timeout) }},
		{"temperature", "sampling.temperature", func() { cfg.Sampling.Temperature = temp }},
		{"max-tokens", "sampling.max_tokens", func() { cfg.Sampling.MaxTokens = maxTok }},
	}
	mr := sp.Format == "mr-gsm8k"
	for _, k := range keys {
		// --concurrency's default (16) is its own, not endpoint.max_in_flight's.
		if given[k.flag] || (k.flag == "chat-format" && given["tokenizer"]) || (mr && k.flag == "concurrency") {
			set = append(set, k.key)
			k.apply()
			if strings.HasPrefix(k.key, "endpoint.") {
				cfg.Endpoint = ep
			}
		}
	}
	if err := cfg.Complete(set...); err != nil {
		return usageError{err.Error()}
	}
	if shard.Count > 1 {
		cfg.Output.Dir = filepath.Join(cfg.Output.Dir, export.ShardDir(export.ShardSpec{Index: shard.Index, Count: shard.Count}))
	}
	m, err := splice.Execute(ctx, cfg, pipeline.JobOptions{Overwrite: *overwrite, Shard: shard})
	if errors.Is(err, pipeline.ErrAlreadyComplete) {
		fmt.Fprintf(stderr, "%s already holds a complete splice of this input with these settings; nothing to do (pass --overwrite to redo it)\n", cfg.Output.Dir)
		return nil
	}
	if err != nil {
		return err
	}
	ds := m.Datasets["sft"]
	fmt.Fprintf(stderr, "spliced %d trajectories into %s (%d records skipped, reasons in the manifest)\n", ds.Rows, cfg.Output.Dir, m.SkippedTotal)
	return nil
}
