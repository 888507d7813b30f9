package export

import (
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go/format"
)

// Compressor is the Parquet page codec of shard writers: zstd at the default
// level with one long-lived encoder whose window covers a page. parquet-go's
// own zstd codec keeps its encoders in a pool that the garbage collector
// empties, and each new encoder allocates a 16 MiB history for an 8 MiB
// window that pages of a few hundred KiB never use; on a long run that
// churn, not the data, set the peak memory. Pages are compressed one at a
// time (EncodeAll), so a window of a page (parquet-go's page buffer, 256
// KiB) loses nothing, and the encoder's history is then 384 KiB.
//
// One Compressor may serve all the shard writers of a job (ShardOptions),
// so that a job writing five datasets keeps one encoder, not five. It is
// safe for concurrent use; writers take turns.
type Compressor struct {
	mu  sync.Mutex
	enc *zstd.Encoder
	dec *zstd.Decoder
}

// compressorWindow is the encoder's window: parquet-go's default page
// buffer size.
const compressorWindow = 256 << 10

// NewCompressor makes a Compressor.
func NewCompressor() (*Compressor, error) {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(compressorWindow),
		zstd.WithLowerEncoderMem(true),
		zstd.WithZeroFrames(true),
		zstd.WithEncoderCRC(false),
	)
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	return &Compressor{enc: enc}, nil
}

// String names the codec.
func (c *Compressor) String() string { return "ZSTD" }

// CompressionCodec is the codec written in column chunk metadata.
func (c *Compressor) CompressionCodec() format.CompressionCodec { return format.Zstd }

// Encode compresses one page.
func (c *Compressor) Encode(dst, src []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.enc.EncodeAll(src, dst[:0]), nil
}

// Decode decompresses one page.
func (c *Compressor) Decode(dst, src []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dec == nil {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		c.dec = d
	}
	return c.dec.DecodeAll(src, dst[:0])
}
