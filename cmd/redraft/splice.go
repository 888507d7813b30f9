package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/internal/redact"
	"github.com/redraft/redraft/pipeline"
	"github.com/redraft/redraft/pipeline/splice"
	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rewards/mathgrade"
	"github.com/redraft/redraft/rollout"
	"github.com/redraft/redraft/tokenizer"
)

// spliceFlags are the settings of redraft splice; the manifest records them
// (never an API key: only the name of its variable).
type spliceFlags struct {
	Format       string   `json:"format"`
	Input        string   `json:"input"`
	Endpoint     string   `json:"endpoint,omitempty"`
	Model        string   `json:"model,omitempty"`
	APIKeyEnv    string   `json:"api_key_env,omitempty"`
	Continuation string   `json:"continuation,omitempty"`
	Instruction  string   `json:"continue_instruction,omitempty"`
	Reflection   string   `json:"reflection,omitempty"`
	Reflections  []string `json:"reflections,omitempty"`
	MaskPrefix   bool     `json:"mask_prefix,omitempty"`
	Grade        bool     `json:"grade,omitempty"`
	Keep         string   `json:"keep,omitempty"`
	Seed         int64    `json:"seed,omitempty"`
	Temperature  *float64 `json:"temperature,omitempty"`
	MaxTokens    *int     `json:"max_tokens,omitempty"`
}

func cmdSplice(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("splice", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf spliceFlags
	fs.StringVar(&sf.Format, "format", "", "input format: prm800k (no model) or mr-gsm8k (needs --endpoint and --model)")
	fs.StringVar(&sf.Input, "input", "", "input `file` (JSONL, optionally .gz)")
	out := fs.String("out", "", "output `directory`")
	overwrite := fs.Bool("overwrite", false, "replace a previous output in the directory")
	tokPath := fs.String("tokenizer", "", "Hugging Face tokenizer.json `file`: also write input_ids, labels and attention_mask (sft/2)")
	chatFormat := fs.String("chat-format", "chatml", "chat format for the token track: chatml, qwen3 or llama3")
	fs.StringVar(&sf.Endpoint, "endpoint", "", "mr-gsm8k: OpenAI-compatible base `URL` (ending in /v1) that writes the corrected continuations")
	fs.StringVar(&sf.Model, "model", "", "mr-gsm8k: model `name` to request")
	fs.StringVar(&sf.APIKeyEnv, "api-key-env", "OPENAI_API_KEY", "mr-gsm8k: environment `variable` holding the API key")
	fs.StringVar(&sf.Continuation, "continuation", rollout.ContinueAuto, "mr-gsm8k: how to ask for the continuation: prefill (continue_final_message), user-turn, or auto (prefill, a user turn after a 400)")
	fs.StringVar(&sf.Instruction, "continue-instruction", "", "mr-gsm8k: the user turn of user-turn continuations (default: "+rollout.DefaultContinueInstruction+")")
	fs.StringVar(&sf.Reflection, "reflection", splice.ReflectionPool, "mr-gsm8k: reflection text: pool, or label-reason (a pool opener followed by the annotator's first-error reason)")
	reflFile := fs.String("reflections", "", "`file` of reflection texts, one per line (default: the built-in pool)")
	fs.BoolVar(&sf.MaskPrefix, "mask-prefix", false, "mr-gsm8k: mask the correct steps before the error too (default: trained, as in STeP)")
	fs.BoolVar(&sf.Grade, "grade", true, "mr-gsm8k: grade the continuation against the reference answer (metadata grade, reward 1/0)")
	fs.StringVar(&sf.Keep, "keep", splice.KeepAll, "mr-gsm8k: all, or correct (only continuations graded correct)")
	fs.Int64Var(&sf.Seed, "seed", 0, "mr-gsm8k: run seed; request seeds and reflection picks derive from it")
	temp := fs.Float64("temperature", -1, "mr-gsm8k: sampling temperature (default: the server's)")
	maxTok := fs.Int("max-tokens", 0, "mr-gsm8k: most tokens per continuation (default: the server's)")
	conc := fs.Int("concurrency", 16, "mr-gsm8k: records in flight")
	timeout := fs.Duration("timeout", 10*time.Minute, "mr-gsm8k: bound on one request attempt")
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := setFlags(fs)
	switch {
	case fs.NArg() > 0:
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	case sf.Format != "prm800k" && sf.Format != "mr-gsm8k":
		return usageError{fmt.Sprintf("--format %q: want prm800k or mr-gsm8k (Agent-R runs through redraft run with an agent_r section, see configs/presets/agent-r.yaml)", sf.Format)}
	case sf.Input == "" || *out == "":
		return usageError{"--input and --out are required"}
	case sf.Format == "mr-gsm8k" && (sf.Endpoint == "" || sf.Model == ""):
		return usageError{"--format mr-gsm8k needs --endpoint URL and --model NAME: the corrected continuations are written by a model"}
	case !rollout.ValidContinueMode(sf.Continuation):
		return usageError{fmt.Sprintf("--continuation %q: want prefill, user-turn or auto", sf.Continuation)}
	case sf.Keep != splice.KeepAll && sf.Keep != splice.KeepCorrect:
		return usageError{fmt.Sprintf("--keep %q: want all or correct", sf.Keep)}
	case sf.Keep == splice.KeepCorrect && !sf.Grade:
		return usageError{"--keep correct needs --grade"}
	case sf.Reflection != splice.ReflectionPool && sf.Reflection != splice.ReflectionLabelReason:
		return usageError{fmt.Sprintf("--reflection %q: want pool or label-reason", sf.Reflection)}
	case *conc < 1:
		return usageError{"--concurrency: must be at least 1"}
	case !redact.IsEnvName(sf.APIKeyEnv):
		// Not quoted: it is likely the key itself.
		return usageError{"--api-key-env: not an environment variable name (letters, digits and _; the value is not shown in case it is a key): put the API key in the environment and name its variable here"}
	case set["temperature"] && !(*temp >= 0 && !math.IsInf(*temp, 0)):
		return usageError{fmt.Sprintf("--temperature %v: want a finite number >= 0 (leave the flag out for the server's default)", *temp)}
	case set["max-tokens"] && *maxTok < 1:
		return usageError{fmt.Sprintf("--max-tokens %d: want at least 1 (leave the flag out for the server's default)", *maxTok)}
	}
	// A setting given is sent as it is; the server's default applies only
	// to one left out.
	if set["temperature"] {
		sf.Temperature = temp
	}
	if set["max-tokens"] {
		sf.MaxTokens = maxTok
	}
	if *reflFile != "" {
		b, err := os.ReadFile(*reflFile)
		if err != nil {
			return fmt.Errorf("--reflections: %w", err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				sf.Reflections = append(sf.Reflections, l)
			}
		}
		if len(sf.Reflections) == 0 {
			return fmt.Errorf("--reflections: %s holds no reflection", *reflFile)
		}
	}
	// Only redraft's own files are written or deleted: a README.md that is
	// not its dataset card, or a file under data/ not named as its shards,
	// stops the run before anything is written, --overwrite included.
	if *overwrite {
		if err := export.RemoveOutput(*out); err != nil {
			return err
		}
	} else if err := export.CheckOwnership(*out); err != nil {
		return err
	} else if _, err := os.Stat(filepath.Join(*out, export.ManifestName)); err == nil {
		return fmt.Errorf("%s already holds a run; pass --overwrite to replace it", *out)
	} else if shards, err := export.HasShards(*out); err != nil {
		return err
	} else if shards {
		return fmt.Errorf("%s already has shards but no manifest; pass --overwrite to replace them", *out)
	}
	var track *export.TokenTrackConfig
	if *tokPath != "" {
		var err error
		if track, err = export.LoadTokenTrack(*tokPath, tokenizer.Format(*chatFormat)); err != nil {
			return err
		}
	}
	w, err := export.NewSFTWriter(export.ShardOptions{Dir: *out}, track)
	if err != nil {
		return err
	}
	m := &export.Manifest{Started: time.Now().UTC(), CodeVersion: export.CodeVersion(), GoVersion: runtime.Version(), Source: "splice:" + sf.Format}
	if sf.Format == "prm800k" {
		m.Config, _ = json.Marshal(map[string]any{"splice": map[string]string{"format": sf.Format, "input": sf.Input}})
	} else {
		// The endpoint is recorded without its credentials (WriteManifest
		// redacts again, whatever the field).
		rec := sf
		rec.Endpoint = redact.URL(sf.Endpoint)
		m.Config, _ = json.Marshal(map[string]any{"splice": rec})
		m.Model, m.Endpoint = sf.Model, rec.Endpoint
	}
	write := func(t *pipeline.Trajectory) error {
		return w.WriteGroup(ctx, []export.SFTRow{t.SFTRow()})
	}
	var skips []splice.Skip
	var runErr error
	if sf.Format == "prm800k" {
		opts := splice.DefaultOptions()
		if len(sf.Reflections) > 0 {
			opts.Reflections = sf.Reflections
		}
		skips, runErr = splice.PRM800K(ctx, sf.Input, opts, write)
	} else {
		skips, runErr = spliceMRGSM8K(ctx, sf, *conc, *timeout, write)
	}
	// The manifest lists the shards finished intact, and is complete only
	// when every row is in them: a write error fails the writer, which
	// then refuses to close, so the run fails.
	if runErr == nil {
		_, runErr = w.Close()
	}
	shards := w.Commit()
	if runErr != nil {
		// The open shard (after a failure: the rows since the last shard
		// finished) is deleted.
		if _, err := w.Rollback(); err != nil {
			runErr = errors.Join(runErr, err)
		}
	}
	ds := export.DatasetInfo{Schema: w.Schema(), Shards: shards}
	for _, s := range shards {
		ds.Rows += s.Rows
		ds.Groups += s.Groups
	}
	m.Datasets = map[string]export.DatasetInfo{"sft": ds}
	for _, s := range skips {
		m.Skipped = append(m.Skipped, export.Skipped{File: sf.Input, Line: s.Line, Reason: s.Reason})
	}
	m.SkippedTotal = int64(len(skips))
	m.Finished = time.Now().UTC()
	m.Status = export.StatusComplete
	if runErr != nil {
		m.Status, m.Error = export.StatusFailed, runErr.Error()
	}
	if err := export.WriteManifest(*out, m); err != nil {
		return err
	}
	if err := export.WriteCard(*out, m); err != nil {
		return err
	}
	if runErr != nil {
		return runErr
	}
	fmt.Fprintf(stderr, "spliced %d trajectories into %s (%d records skipped, reasons in the manifest)\n", ds.Rows, *out, len(skips))
	return nil
}

// spliceMRGSM8K runs MR-GSM8K splicing against the flags' endpoint.
func spliceMRGSM8K(ctx context.Context, sf spliceFlags, conc int, timeout time.Duration, emit func(*pipeline.Trajectory) error) ([]splice.Skip, error) {
	key := os.Getenv(sf.APIKeyEnv)
	fleet, err := rollout.NewEndpoints(rollout.EndpointsConfig{
		URLs: []string{sf.Endpoint}, Model: sf.Model, APIKey: key, Timeout: timeout, MaxInFlight: conc,
	})
	if err != nil {
		return nil, err
	}
	defer fleet.Close()
	// No error recorded may quote a credential of --endpoint.
	policy := pipeline.ScrubPolicy(fleet, append(redact.Secrets(sf.Endpoint), key)...)
	opts := splice.DefaultMRGSM8KOptions(&rollout.Continuer{Policy: policy, Mode: sf.Continuation, Instruction: sf.Instruction})
	opts.Sampling = rollout.Sampling{Temperature: sf.Temperature, MaxTokens: sf.MaxTokens}
	opts.Seed, opts.Model, opts.Concurrency = sf.Seed, sf.Model, conc
	opts.ReflectionSource, opts.TrainPrefix, opts.Keep = sf.Reflection, !sf.MaskPrefix, sf.Keep
	if len(sf.Reflections) > 0 {
		opts.Reflections = sf.Reflections
	}
	if sf.Grade {
		opts.Grader = rewards.NewMathGrader(mathgrade.Options{})
	}
	return splice.MRGSM8K(ctx, sf.Input, opts, emit)
}
