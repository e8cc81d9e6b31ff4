//go:build !purego

#include "textflag.h"

// func adamSIMD(w, grad, m, v *float32, k int, c *AdamConsts, part *[4]float32)
//
// SSE2, four floats per step, the operations of AdamScalar in its order
// (Go operand order: OP src, dst computes dst = dst OP src):
//
//	m' = b1·m + a1·g;  v' = b2·v + (a2·g)·g
//	w' = w·decay − stepSize·(m' / (√v' / c2 + eps));  g = 0;  part += w'²
TEXT ·adamSIMD(SB), NOSPLIT, $0-56
	MOVQ w+0(FP), DI
	MOVQ grad+8(FP), SI
	MOVQ m+16(FP), R8
	MOVQ v+24(FP), R9
	MOVQ k+32(FP), CX
	MOVQ c+40(FP), AX

	// Broadcast the constants (AdamConsts field order).
	MOVSS  0(AX), X8 // b1
	SHUFPS $0, X8, X8
	MOVSS  4(AX), X9 // a1
	SHUFPS $0, X9, X9
	MOVSS  8(AX), X10 // b2
	SHUFPS $0, X10, X10
	MOVSS  12(AX), X11 // a2
	SHUFPS $0, X11, X11
	MOVSS  16(AX), X12 // eps
	SHUFPS $0, X12, X12
	MOVSS  20(AX), X13 // decay
	SHUFPS $0, X13, X13
	MOVSS  24(AX), X14 // stepSize
	SHUFPS $0, X14, X14
	MOVSS  28(AX), X15 // c2
	SHUFPS $0, X15, X15

	XORPS X7, X7 // Σ w'² (4 lanes)
	XORPS X6, X6 // zeros for g
	SHLQ  $2, CX // bytes
	XORQ  BX, BX

loop:
	MOVUPS (SI)(BX*1), X0 // g
	MOVUPS (R8)(BX*1), X1 // m
	MULPS  X8, X1         // b1·m
	MOVAPS X9, X2
	MULPS  X0, X2         // a1·g
	ADDPS  X2, X1         // m'
	MOVUPS (R9)(BX*1), X2 // v
	MULPS  X10, X2        // b2·v
	MOVAPS X11, X3
	MULPS  X0, X3         // a2·g
	MULPS  X0, X3         // (a2·g)·g
	ADDPS  X3, X2         // v'
	SQRTPS X2, X3         // √v'
	DIVPS  X15, X3        // √v' / c2
	ADDPS  X12, X3        // + eps
	MOVAPS X1, X4
	DIVPS  X3, X4         // m' / (…)
	MULPS  X14, X4        // stepSize·(…)
	MOVUPS (DI)(BX*1), X5 // w
	MULPS  X13, X5        // w·decay
	SUBPS  X4, X5         // w'
	MOVUPS X1, (R8)(BX*1)
	MOVUPS X2, (R9)(BX*1)
	MOVUPS X5, (DI)(BX*1)
	MOVUPS X6, (SI)(BX*1)
	MULPS  X5, X5
	ADDPS  X5, X7
	ADDQ   $16, BX
	CMPQ   BX, CX
	JLT    loop

	MOVQ   part+48(FP), AX
	MOVUPS X7, (AX)
	RET
