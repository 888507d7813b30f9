package rollout

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"
)

// DeriveSeed returns the request seed for one sample. It depends only on
// (run seed, task id, sample index, turn), so a resumed run or a single redone
// sample sends exactly the seed the original run sent. The value fits in 31
// bits because llama-server treats seeds as uint32 with 0xFFFFFFFF meaning
// "random", and some servers reject negative or 64-bit seeds.
func DeriveSeed(runSeed int64, taskID string, sample, turn int) int64 {
	h := sha256.New()
	var buf [8]byte
	binary.LittleEndian.PutUint64(buf[:], uint64(runSeed))
	h.Write(buf[:])
	// Length-prefix the id so that ("ab", 1) and ("a", "b1") cannot collide.
	h.Write([]byte(strconv.Itoa(len(taskID))))
	h.Write([]byte{0})
	h.Write([]byte(taskID))
	binary.LittleEndian.PutUint64(buf[:], uint64(sample))
	h.Write(buf[:])
	binary.LittleEndian.PutUint64(buf[:], uint64(turn))
	h.Write(buf[:])
	sum := h.Sum(nil)
	return int64(binary.LittleEndian.Uint32(sum[:4]) & 0x7fffffff)
}
