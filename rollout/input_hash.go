package rollout

// FNV-1a 64-bit parameters (FNV offset basis and FNV prime).
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// ShardOf returns the shard, in [0, count), of the task with this id; 0 when
// count <= 1. It is the FNV-1a 64-bit hash of the id's UTF-8 bytes (offset
// basis 0xcbf29ce484222325, prime 0x100000001b3, arithmetic modulo 2^64),
// taken modulo count as an unsigned 64-bit integer. The id is the task id as
// redraft reads it: a numeric id 7 is the text "7", a generated id
// "<file base>:<line>". This definition is part of redraft's contract and
// never changes, so that other tools (and Python) can compute it.
func ShardOf(id string, count int) int {
	if count <= 1 {
		return 0
	}
	h := uint64(fnvOffset64)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= fnvPrime64
	}
	return int(h % uint64(count))
}

// TaskIDHash extends a rolling hash of task ids with one more id: FNV-1a 64
// over the id's bytes followed by the separator byte 0xff (which no UTF-8
// text contains, so ["ab", "c"] and ["a", "bc"] differ), continuing from
// prev. prev 0 stands for no ids yet and starts from the FNV offset basis;
// the hash of no ids is 0. A run records the hash of the ids it has done and
// resumes with it as InputOptions.SkipHash.
func TaskIDHash(prev uint64, id string) uint64 {
	h := prev
	if h == 0 {
		h = fnvOffset64
	}
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= fnvPrime64
	}
	h ^= 0xff
	h *= fnvPrime64
	return h
}
