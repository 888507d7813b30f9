// Package probe scores a battery of adversarial responses against a
// configuration's reward, without a model: for each sampled task it builds
// an honest correct response (the baseline) and responses that try to earn
// reward without solving the task (the bare answer, several different final
// answers, the answer only in the reasoning field, a truncated response, a
// format-only response, the question repeated, an instruction to the judge,
// an overlong padded response), scores them with the run's own scorer, and
// reports per probe and per reward component the mean reward against the
// baseline. A probe that the user marks as forbidden and that earns reward
// fails the check (redraft probe exits 1).
//
// Code tasks (tasks with tests, rollout.Task.Code) get their own battery,
// CodeProbes: the honest program (a recorded response that passes, else
// the canonical solution in the task's metadata), a program that
// special-cases the examples the prompt shows, prose without a program, a
// stub, a stub that exits or prints a pass when it loads, an instruction
// to the grader in a comment, and the honest program tagged as another
// language. The cases of one run are all of one kind.
//
// Guarantees:
//
//   - Same reward as a run. The responses are scored by the rewards.Scorer
//     given, which redraft probe builds with pipeline.NewScorer, the
//     constructor Execute uses: the same grader, components, weights and
//     judges (judges are called; a judge cache is used when configured).
//   - Deterministic battery. The responses are a function of the task,
//     its reference and the honest text only; the tasks are the first N
//     with a reference, in input order.
//   - No false pass by omission. A probe whose total reward is null on
//     every task (a component could not be computed) is reported as null,
//     with the reason, and does not count as earning; an honest baseline
//     that is null or earns no more than the threshold is reported
//     (Report.Warnings), since then the battery proves nothing.
//   - Grouping. The probes of one task are scored as one group, the honest
//     response first, so group-level components (consensus) see them as
//     samples of one prompt; each probe is its own sample, never merged.
package probe
