//go:build !purego

#include "textflag.h"

// Go operand order: OP src2, src1, dst. VFMADD231PS x, y, z computes
// z = y·x + z (Intel's vfmadd231ps z, y, x).

// step6x16 is one rank-1 update of the 6×16 accumulator tile Y0–Y11
// (row r in Y(2r), Y(2r+1)) with the packed A column at ao(SI) (6 floats)
// and the packed B row at bo(DI) (16 floats).
#define step6x16(ao, bo) \
	VMOVUPS      bo(DI), Y12            \
	VMOVUPS      bo+32(DI), Y13         \
	VBROADCASTSS ao(SI), Y14            \
	VBROADCASTSS ao+4(SI), Y15          \
	VFMADD231PS  Y14, Y12, Y0           \
	VFMADD231PS  Y14, Y13, Y1           \
	VFMADD231PS  Y15, Y12, Y2           \
	VFMADD231PS  Y15, Y13, Y3           \
	VBROADCASTSS ao+8(SI), Y14          \
	VBROADCASTSS ao+12(SI), Y15         \
	VFMADD231PS  Y14, Y12, Y4           \
	VFMADD231PS  Y14, Y13, Y5           \
	VFMADD231PS  Y15, Y12, Y6           \
	VFMADD231PS  Y15, Y13, Y7           \
	VBROADCASTSS ao+16(SI), Y14         \
	VBROADCASTSS ao+20(SI), Y15         \
	VFMADD231PS  Y14, Y12, Y8           \
	VFMADD231PS  Y14, Y13, Y9           \
	VFMADD231PS  Y15, Y12, Y10          \
	VFMADD231PS  Y15, Y13, Y11

// step4x16: rows 0–3 only (Y0–Y7), for tiles cut to 3 or 4 rows.
#define step4x16(ao, bo) \
	VMOVUPS      bo(DI), Y12            \
	VMOVUPS      bo+32(DI), Y13         \
	VBROADCASTSS ao(SI), Y14            \
	VBROADCASTSS ao+4(SI), Y15          \
	VFMADD231PS  Y14, Y12, Y0           \
	VFMADD231PS  Y14, Y13, Y1           \
	VFMADD231PS  Y15, Y12, Y2           \
	VFMADD231PS  Y15, Y13, Y3           \
	VBROADCASTSS ao+8(SI), Y14          \
	VBROADCASTSS ao+12(SI), Y15         \
	VFMADD231PS  Y14, Y12, Y4           \
	VFMADD231PS  Y14, Y13, Y5           \
	VFMADD231PS  Y15, Y12, Y6           \
	VFMADD231PS  Y15, Y13, Y7

// step2x16: rows 0–1 only (Y0–Y3), for tiles cut to 1 or 2 rows.
#define step2x16(ao, bo) \
	VMOVUPS      bo(DI), Y12            \
	VMOVUPS      bo+32(DI), Y13         \
	VBROADCASTSS ao(SI), Y14            \
	VBROADCASTSS ao+4(SI), Y15          \
	VFMADD231PS  Y14, Y12, Y0           \
	VFMADD231PS  Y14, Y13, Y1           \
	VFMADD231PS  Y15, Y12, Y2           \
	VFMADD231PS  Y15, Y13, Y3

// kloop runs step over the k columns in CX (four per iteration, then one
// at a time), advancing SI by 6 floats and DI by 16 per column.
#define kloop(step, l4, t, l1, out) \
	CMPQ CX, $4             \
	JLT  t                  \
l4:                         \
	step(0, 0)              \
	step(24, 64)            \
	step(48, 128)           \
	step(72, 192)           \
	ADDQ $96, SI            \
	ADDQ $256, DI           \
	SUBQ $4, CX             \
	CMPQ CX, $4             \
	JGE  l4                 \
t:                          \
	TESTQ CX, CX            \
	JEQ   out               \
l1:                         \
	step(0, 0)              \
	ADDQ $24, SI            \
	ADDQ $64, DI            \
	DECQ CX                 \
	JNZ  l1                 \
	JMP  out

// func kernel6x16(k int, a, b, c *float32, ldc int, alpha, beta float32, rows int)
//
// C[0:rows, 0:16] = alpha·Σ_p a[6p+i]·b[16p+j] + beta·C (C row stride ldc)
// over p < k (k ≥ 1, 1 ≤ rows ≤ 6; a keeps its 6-row layout). Only the
// first rows rows of C are read or written, and C is not read at all when
// beta is ±0. Tiles of 3–4 and 1–2 rows skip the FMAs of the missing rows.
TEXT ·kernel6x16(SB), NOSPLIT, $0-56
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ c+24(FP), DX
	MOVQ ldc+32(FP), R9
	MOVQ rows+48(FP), R12
	SHLQ $2, R9              // row stride in bytes
	LEAQ (R9)(R9*2), R10     // 3 rows
	LEAQ (DX)(R9*4), R11     // row 4

	// Bring the C tile into cache while the products accumulate (a
	// prefetch of a row outside C does not fault).
	PREFETCHT0 (DX)
	PREFETCHT0 60(DX)
	PREFETCHT0 (DX)(R9*1)
	PREFETCHT0 60(DX)(R9*1)
	PREFETCHT0 (DX)(R9*2)
	PREFETCHT0 60(DX)(R9*2)
	PREFETCHT0 (DX)(R10*1)
	PREFETCHT0 60(DX)(R10*1)
	PREFETCHT0 (R11)
	PREFETCHT0 60(R11)
	PREFETCHT0 (R11)(R9*1)
	PREFETCHT0 60(R11)(R9*1)

	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11

	CMPQ R12, $2
	JLE  rows2
	CMPQ R12, $4
	JLE  rows4
	kloop(step6x16, loop6, tail6, one6, scale)

rows4:
	kloop(step4x16, loop4, tail4, one4, scale)

rows2:
	kloop(step2x16, loop2, tail2, one2, scale)

scale:
	VBROADCASTSS alpha+40(FP), Y14
	VMULPS       Y14, Y0, Y0
	VMULPS       Y14, Y1, Y1
	VMULPS       Y14, Y2, Y2
	VMULPS       Y14, Y3, Y3
	VMULPS       Y14, Y4, Y4
	VMULPS       Y14, Y5, Y5
	VMULPS       Y14, Y6, Y6
	VMULPS       Y14, Y7, Y7
	VMULPS       Y14, Y8, Y8
	VMULPS       Y14, Y9, Y9
	VMULPS       Y14, Y10, Y10
	VMULPS       Y14, Y11, Y11

	MOVL beta+44(FP), AX
	ANDL $0x7fffffff, AX
	JEQ  store

	// C = beta·C + alpha·AB, one rounding (FMA), row by row up to rows.
	VBROADCASTSS beta+44(FP), Y15
	VFMADD231PS  (DX), Y15, Y0
	VFMADD231PS  32(DX), Y15, Y1
	CMPQ         R12, $1
	JEQ          store
	VFMADD231PS  (DX)(R9*1), Y15, Y2
	VFMADD231PS  32(DX)(R9*1), Y15, Y3
	CMPQ         R12, $2
	JEQ          store
	VFMADD231PS  (DX)(R9*2), Y15, Y4
	VFMADD231PS  32(DX)(R9*2), Y15, Y5
	CMPQ         R12, $3
	JEQ          store
	VFMADD231PS  (DX)(R10*1), Y15, Y6
	VFMADD231PS  32(DX)(R10*1), Y15, Y7
	CMPQ         R12, $4
	JEQ          store
	VFMADD231PS  (R11), Y15, Y8
	VFMADD231PS  32(R11), Y15, Y9
	CMPQ         R12, $5
	JEQ          store
	VFMADD231PS  (R11)(R9*1), Y15, Y10
	VFMADD231PS  32(R11)(R9*1), Y15, Y11

store:
	VMOVUPS Y0, (DX)
	VMOVUPS Y1, 32(DX)
	CMPQ    R12, $1
	JEQ     done
	VMOVUPS Y2, (DX)(R9*1)
	VMOVUPS Y3, 32(DX)(R9*1)
	CMPQ    R12, $2
	JEQ     done
	VMOVUPS Y4, (DX)(R9*2)
	VMOVUPS Y5, 32(DX)(R9*2)
	CMPQ    R12, $3
	JEQ     done
	VMOVUPS Y6, (DX)(R10*1)
	VMOVUPS Y7, 32(DX)(R10*1)
	CMPQ    R12, $4
	JEQ     done
	VMOVUPS Y8, (R11)
	VMOVUPS Y9, 32(R11)
	CMPQ    R12, $5
	JEQ     done
	VMOVUPS Y10, (R11)(R9*1)
	VMOVUPS Y11, 32(R11)(R9*1)

done:
	VZEROUPPER
	RET

// func fmaLoop(n int)
//
// n iterations of 12 independent 8-wide FMAs (192 flops each): two FMA
// pipes × 4-cycle latency need at least 8 chains to stay busy, so the loop
// runs at the core's FMA throughput, the ceiling of any float32 GEMM.
TEXT ·fmaLoop(SB), NOSPLIT, $0-8
	MOVQ         n+0(FP), CX
	MOVL         $0x3f800000, AX // 1.0
	MOVL         AX, X12
	VBROADCASTSS X12, Y12
	VMOVUPS      Y12, Y13
	VXORPS       Y0, Y0, Y0
	VXORPS       Y1, Y1, Y1
	VXORPS       Y2, Y2, Y2
	VXORPS       Y3, Y3, Y3
	VXORPS       Y4, Y4, Y4
	VXORPS       Y5, Y5, Y5
	VXORPS       Y6, Y6, Y6
	VXORPS       Y7, Y7, Y7
	VXORPS       Y8, Y8, Y8
	VXORPS       Y9, Y9, Y9
	VXORPS       Y10, Y10, Y10
	VXORPS       Y11, Y11, Y11
	TESTQ        CX, CX
	JEQ          fmadone

fmaloop:
	VFMADD231PS Y12, Y13, Y0
	VFMADD231PS Y12, Y13, Y1
	VFMADD231PS Y12, Y13, Y2
	VFMADD231PS Y12, Y13, Y3
	VFMADD231PS Y12, Y13, Y4
	VFMADD231PS Y12, Y13, Y5
	VFMADD231PS Y12, Y13, Y6
	VFMADD231PS Y12, Y13, Y7
	VFMADD231PS Y12, Y13, Y8
	VFMADD231PS Y12, Y13, Y9
	VFMADD231PS Y12, Y13, Y10
	VFMADD231PS Y12, Y13, Y11
	DECQ        CX
	JNZ         fmaloop

fmadone:
	VZEROUPPER
	RET

// transpose8x8 transposes the 8×8 block held in Y0–Y7 (row r in Yr) into
// Y8–Y15 (column c in Y(8+c)), using Y8–Y15 as scratch first.
#define transpose8x8 \
	VUNPCKLPS  Y1, Y0, Y8        \
	VUNPCKHPS  Y1, Y0, Y9        \
	VUNPCKLPS  Y3, Y2, Y10       \
	VUNPCKHPS  Y3, Y2, Y11       \
	VUNPCKLPS  Y5, Y4, Y12       \
	VUNPCKHPS  Y5, Y4, Y13       \
	VUNPCKLPS  Y7, Y6, Y14       \
	VUNPCKHPS  Y7, Y6, Y15       \
	VSHUFPS    $0x44, Y10, Y8, Y0 \
	VSHUFPS    $0xEE, Y10, Y8, Y1 \
	VSHUFPS    $0x44, Y11, Y9, Y2 \
	VSHUFPS    $0xEE, Y11, Y9, Y3 \
	VSHUFPS    $0x44, Y14, Y12, Y4 \
	VSHUFPS    $0xEE, Y14, Y12, Y5 \
	VSHUFPS    $0x44, Y15, Y13, Y6 \
	VSHUFPS    $0xEE, Y15, Y13, Y7 \
	VPERM2F128 $0x20, Y4, Y0, Y8  \
	VPERM2F128 $0x20, Y5, Y1, Y9  \
	VPERM2F128 $0x20, Y6, Y2, Y10 \
	VPERM2F128 $0x20, Y7, Y3, Y11 \
	VPERM2F128 $0x31, Y4, Y0, Y12 \
	VPERM2F128 $0x31, Y5, Y1, Y13 \
	VPERM2F128 $0x31, Y6, Y2, Y14 \
	VPERM2F128 $0x31, Y7, Y3, Y15

// func packA6(d *float32, rows *[6]*float32, k int)
//
// d[6p+r] = rows[r][p] for p < k, r < 6: six rows of A into one packed
// micro-panel, eight columns at a time through a register transpose.
TEXT ·packA6(SB), NOSPLIT, $0-24
	MOVQ d+0(FP), DI
	MOVQ rows+8(FP), AX
	MOVQ k+16(FP), CX
	MOVQ 0(AX), R8
	MOVQ 8(AX), R9
	MOVQ 16(AX), R10
	MOVQ 24(AX), R11
	MOVQ 32(AX), R12
	MOVQ 40(AX), R13
	XORQ BX, BX // byte offset in the rows
	CMPQ CX, $8
	JLT  a6tail

a6loop:
	VMOVUPS   (R8)(BX*1), Y0
	VMOVUPS   (R9)(BX*1), Y1
	VMOVUPS   (R10)(BX*1), Y2
	VMOVUPS   (R11)(BX*1), Y3
	VMOVUPS   (R12)(BX*1), Y4
	VMOVUPS   (R13)(BX*1), Y5
	VUNPCKLPS Y1, Y0, Y8         // r0₀ r1₀ r0₁ r1₁ | r0₄ r1₄ r0₅ r1₅
	VUNPCKHPS Y1, Y0, Y9         // r0₂ r1₂ r0₃ r1₃ | r0₆ r1₆ r0₇ r1₇
	VUNPCKLPS Y3, Y2, Y10
	VUNPCKHPS Y3, Y2, Y11
	VUNPCKLPS Y5, Y4, Y12        // r4₀ r5₀ r4₁ r5₁ | r4₄ r5₄ r4₅ r5₅
	VUNPCKHPS Y5, Y4, Y13        // r4₂ r5₂ r4₃ r5₃ | r4₆ r5₆ r4₇ r5₇
	VSHUFPS   $0x44, Y10, Y8, Y0 // rows 0–3 of columns 0 | 4
	VSHUFPS   $0xEE, Y10, Y8, Y1 // columns 1 | 5
	VSHUFPS   $0x44, Y11, Y9, Y2 // columns 2 | 6
	VSHUFPS   $0xEE, Y11, Y9, Y3 // columns 3 | 7

	// Column c goes to d[6c : 6c+6]: rows 0–3 (16 bytes), rows 4–5 (8).
	VMOVUPS      X0, 0(DI)
	VMOVLPS      X12, 16(DI)
	VMOVUPS      X1, 24(DI)
	VMOVHPS      X12, 40(DI)
	VMOVUPS      X2, 48(DI)
	VMOVLPS      X13, 64(DI)
	VMOVUPS      X3, 72(DI)
	VMOVHPS      X13, 88(DI)
	VEXTRACTF128 $1, Y12, X12
	VEXTRACTF128 $1, Y13, X13
	VEXTRACTF128 $1, Y0, 96(DI)
	VMOVLPS      X12, 112(DI)
	VEXTRACTF128 $1, Y1, 120(DI)
	VMOVHPS      X12, 136(DI)
	VEXTRACTF128 $1, Y2, 144(DI)
	VMOVLPS      X13, 160(DI)
	VEXTRACTF128 $1, Y3, 168(DI)
	VMOVHPS      X13, 184(DI)

	ADDQ $32, BX
	ADDQ $192, DI
	SUBQ $8, CX
	CMPQ CX, $8
	JGE  a6loop

a6tail:
	TESTQ CX, CX
	JEQ   a6done

a6one:
	VMOVSS (R8)(BX*1), X0
	VMOVSS X0, 0(DI)
	VMOVSS (R9)(BX*1), X0
	VMOVSS X0, 4(DI)
	VMOVSS (R10)(BX*1), X0
	VMOVSS X0, 8(DI)
	VMOVSS (R11)(BX*1), X0
	VMOVSS X0, 12(DI)
	VMOVSS (R12)(BX*1), X0
	VMOVSS X0, 16(DI)
	VMOVSS (R13)(BX*1), X0
	VMOVSS X0, 20(DI)
	ADDQ   $4, BX
	ADDQ   $24, DI
	DECQ   CX
	JNZ    a6one

a6done:
	VZEROUPPER
	RET

// loadRows8 loads 8 floats at byte offset BX of the 8 rows whose pointers
// are at off(AX) into Y0–Y7 (clobbers DX).
#define loadRows8(off) \
	MOVQ    off(AX), DX       \
	VMOVUPS (DX)(BX*1), Y0    \
	MOVQ    off+8(AX), DX     \
	VMOVUPS (DX)(BX*1), Y1    \
	MOVQ    off+16(AX), DX    \
	VMOVUPS (DX)(BX*1), Y2    \
	MOVQ    off+24(AX), DX    \
	VMOVUPS (DX)(BX*1), Y3    \
	MOVQ    off+32(AX), DX    \
	VMOVUPS (DX)(BX*1), Y4    \
	MOVQ    off+40(AX), DX    \
	VMOVUPS (DX)(BX*1), Y5    \
	MOVQ    off+48(AX), DX    \
	VMOVUPS (DX)(BX*1), Y6    \
	MOVQ    off+56(AX), DX    \
	VMOVUPS (DX)(BX*1), Y7

// storeCols8 stores Y8–Y15 (columns 0–7) at off(DI) + 64·c.
#define storeCols8(off) \
	VMOVUPS Y8, off(DI)       \
	VMOVUPS Y9, off+64(DI)    \
	VMOVUPS Y10, off+128(DI)  \
	VMOVUPS Y11, off+192(DI)  \
	VMOVUPS Y12, off+256(DI)  \
	VMOVUPS Y13, off+320(DI)  \
	VMOVUPS Y14, off+384(DI)  \
	VMOVUPS Y15, off+448(DI)

// func packB16(d *float32, rows *[16]*float32, k int)
//
// d[16p+j] = rows[j][p] for p < k, j < 16: sixteen rows of the stored B
// (columns of op(B) = Bᵀ) into one packed micro-panel, as two 8×8 register
// transposes per eight columns.
TEXT ·packB16(SB), NOSPLIT, $0-24
	MOVQ d+0(FP), DI
	MOVQ rows+8(FP), AX
	MOVQ k+16(FP), CX
	XORQ BX, BX
	CMPQ CX, $8
	JLT  b16tail

b16loop:
	loadRows8(0)
	transpose8x8
	storeCols8(0)
	loadRows8(64)
	transpose8x8
	storeCols8(32)
	ADDQ $32, BX
	ADDQ $512, DI
	SUBQ $8, CX
	CMPQ CX, $8
	JGE  b16loop

b16tail:
	TESTQ CX, CX
	JEQ   b16done

b16one:
	XORQ SI, SI

b16row:
	MOVQ   (AX)(SI*8), DX
	VMOVSS (DX)(BX*1), X0
	VMOVSS X0, (DI)(SI*4)
	INCQ   SI
	CMPQ   SI, $16
	JLT    b16row
	ADDQ   $4, BX
	ADDQ   $64, DI
	DECQ   CX
	JNZ    b16one

b16done:
	VZEROUPPER
	RET

// func packB16N(d, b *float32, ldb, k, np, kd int)
//
// d[q·16·kd + 16p + j] = b[p·ldb + 16q + j] for p < k, q < np, j < 16:
// np 16-column micro-panels of a row-major B, row by row (each row of B is
// read once, front to back, which the hardware prefetcher follows; panel
// by panel the 2 KiB stride of a 512-wide B defeats it).
TEXT ·packB16N(SB), NOSPLIT, $0-48
	MOVQ d+0(FP), DI
	MOVQ b+8(FP), SI
	MOVQ ldb+16(FP), R9
	MOVQ k+24(FP), CX
	MOVQ np+32(FP), R8
	MOVQ kd+40(FP), R10
	SHLQ $2, R9  // row stride of B in bytes
	SHLQ $6, R10 // panel stride of d in bytes (16·kd floats)
	TESTQ CX, CX
	JEQ   b16ndone

b16nrow:
	MOVQ SI, AX
	MOVQ DI, DX
	MOVQ R8, BX

b16npanel:
	VMOVUPS (AX), Y0
	VMOVUPS 32(AX), Y1
	VMOVUPS Y0, (DX)
	VMOVUPS Y1, 32(DX)
	ADDQ    $64, AX
	ADDQ    R10, DX
	DECQ    BX
	JNZ     b16npanel

	ADDQ R9, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  b16nrow

b16ndone:
	VZEROUPPER
	RET

// func packA6T(d, a *float32, lda, k, np, kd int)
//
// d[q·6·kd + 6p + r] = a[p·lda + 6q + r] for p < k, q < np, r < 6: np
// 6-row micro-panels of op(A) = Aᵀ (A stored k×m), row of A by row.
TEXT ·packA6T(SB), NOSPLIT, $0-48
	MOVQ  d+0(FP), DI
	MOVQ  a+8(FP), SI
	MOVQ  lda+16(FP), R9
	MOVQ  k+24(FP), CX
	MOVQ  np+32(FP), R8
	MOVQ  kd+40(FP), R10
	SHLQ  $2, R9
	LEAQ  (R10)(R10*2), R10
	SHLQ  $3, R10 // panel stride of d in bytes (6·kd floats)
	TESTQ CX, CX
	JEQ   a6tdone

a6trow:
	MOVQ SI, AX
	MOVQ DI, DX
	MOVQ R8, BX

a6tpanel:
	VMOVUPS (AX), X0
	VMOVSD  16(AX), X1
	VMOVUPS X0, (DX)
	VMOVSD  X1, 16(DX)
	ADDQ    $24, AX
	ADDQ    R10, DX
	DECQ    BX
	JNZ     a6tpanel

	ADDQ R9, SI
	ADDQ $24, DI
	DECQ CX
	JNZ  a6trow

a6tdone:
	RET
