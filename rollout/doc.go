// Package rollout is the first stage of redraft: it turns tasks into groups
// of sampled responses.
//
// A Task is one prompt with its reference answer. A Group is every sample
// drawn for one task at one turn; groups are the unit that flows through the
// rest of the pipeline, because advantages need the whole group. Groups come
// either from a Generator, which samples a Policy (an OpenAI-compatible
// endpoint) G times per task, or from recorded rollouts generated elsewhere
// (for example by vLLM's batch runner), read by a RecordedFile (OpenRecorded)
// and replayed by a ReplayProducer.
//
// A failed request never removes a sample from its group: the sample carries
// the error text and flows on, so that every task ends up in the output or in
// a failures record.
package rollout
