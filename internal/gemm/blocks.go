package gemm

// Register block of the micro-kernel and cache blocks of the driver (see
// the package documentation).
const (
	mr = 6  // rows of the C tile: 6 broadcasts of A per k step
	nr = 16 // columns of the C tile: two YMM registers of B
)

// Cache blocks, variables so that tests can shrink them to reach every
// block boundary with small matrices.
var (
	kc = 256  // depth: an A micro-panel (6·kc) and a B micro-panel (16·kc), 22 KiB of the 32 KiB L1d
	mc = 144  // rows of the packed A block, mc·kc·4 B = 144 KiB of L2
	nc = 2048 // columns of the packed B block, kc·nc·4 B = 2 MiB of L3
)
