//go:build !purego

#include "textflag.h"

// SSE2 kernels of elementwise.go, four float32 per step (Go operand order:
// OP src, dst computes dst = dst OP src). relu(z) is MAXPS with 0 as the
// destination: (0 > z) ? 0 : z.

// func normActSIMD(a, h *float32, k int, c *actConsts[float32])
TEXT ·normActSIMD(SB), NOSPLIT, $0-32
	MOVQ a+0(FP), DI
	MOVQ h+8(FP), SI
	MOVQ k+16(FP), CX
	MOVQ c+24(FP), AX
	MOVSS  0(AX), X8 // μ
	SHUFPS $0, X8, X8
	MOVSS  4(AX), X9 // s
	SHUFPS $0, X9, X9
	MOVSS  8(AX), X10 // γ
	SHUFPS $0, X10, X10
	MOVSS  12(AX), X11 // β
	SHUFPS $0, X11, X11
	XORPS  X15, X15
	SHLQ   $2, CX
	XORQ   BX, BX

act:
	MOVUPS (DI)(BX*1), X0
	SUBPS  X8, X0 // a − μ
	MULPS  X9, X0 // x̂
	MOVUPS X0, (DI)(BX*1)
	MULPS  X10, X0 // γ·x̂
	ADDPS  X11, X0 // + β
	MOVAPS X15, X1
	MAXPS  X0, X1 // relu
	MOVUPS X1, (SI)(BX*1)
	ADDQ   $16, BX
	CMPQ   BX, CX
	JLT    act
	RET

// func normActSCSIMD(a, h, sc *float32, k int, c *actConsts[float32])
TEXT ·normActSCSIMD(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), DI
	MOVQ h+8(FP), SI
	MOVQ sc+16(FP), DX
	MOVQ k+24(FP), CX
	MOVQ c+32(FP), AX
	MOVSS  0(AX), X8
	SHUFPS $0, X8, X8
	MOVSS  4(AX), X9
	SHUFPS $0, X9, X9
	MOVSS  8(AX), X10
	SHUFPS $0, X10, X10
	MOVSS  12(AX), X11
	SHUFPS $0, X11, X11
	XORPS  X15, X15
	SHLQ   $2, CX
	XORQ   BX, BX

actsc:
	MOVUPS (DI)(BX*1), X0
	SUBPS  X8, X0
	MULPS  X9, X0
	MOVUPS X0, (DI)(BX*1)
	MULPS  X10, X0
	ADDPS  X11, X0
	MOVUPS (DX)(BX*1), X2
	ADDPS  X2, X0 // + shortcut
	MOVAPS X15, X1
	MAXPS  X0, X1
	MOVUPS X1, (SI)(BX*1)
	ADDQ   $16, BX
	CMPQ   BX, CX
	JLT    actsc
	RET

// func gateSumsSIMD(d, gr, y, xh *float32, k int, part *[8]float64)
TEXT ·gateSumsSIMD(SB), NOSPLIT, $0-48
	MOVQ d+0(FP), DI
	MOVQ gr+8(FP), SI
	MOVQ y+16(FP), DX
	MOVQ xh+24(FP), R8
	MOVQ k+32(FP), CX
	MOVQ part+40(FP), AX
	MOVUPD 0(AX), X8   // Σd, lanes 0,1
	MOVUPD 16(AX), X9  // Σd, lanes 2,3
	MOVUPD 32(AX), X10 // Σd·x̂, lanes 0,1
	MOVUPD 48(AX), X11 // Σd·x̂, lanes 2,3
	XORPS  X15, X15
	SHLQ   $2, CX
	XORQ   BX, BX

gate:
	MOVUPS   (DX)(BX*1), X0
	MOVAPS   X15, X1
	CMPPS    X0, X1, $1 // 0 < y
	MOVUPS   (SI)(BX*1), X2
	ANDPS    X1, X2     // d
	MOVUPS   X2, (DI)(BX*1)
	CVTPS2PD X2, X3     // d lanes 0,1
	MOVHLPS  X2, X4
	CVTPS2PD X4, X4     // d lanes 2,3
	ADDPD    X3, X8
	ADDPD    X4, X9
	MOVUPS   (R8)(BX*1), X5
	CVTPS2PD X5, X6     // x̂ lanes 0,1
	MOVHLPS  X5, X7
	CVTPS2PD X7, X7     // x̂ lanes 2,3
	MULPD    X3, X6
	MULPD    X4, X7
	ADDPD    X6, X10
	ADDPD    X7, X11
	ADDQ     $16, BX
	CMPQ     BX, CX
	JLT      gate

	MOVUPD X8, 0(AX)
	MOVUPD X9, 16(AX)
	MOVUPD X10, 32(AX)
	MOVUPD X11, 48(AX)
	RET

// func sumsSIMD(v *float32, k int, part *[8]float64)
TEXT ·sumsSIMD(SB), NOSPLIT, $0-24
	MOVQ v+0(FP), DI
	MOVQ k+8(FP), CX
	MOVQ part+16(FP), AX
	MOVUPD 0(AX), X8
	MOVUPD 16(AX), X9
	MOVUPD 32(AX), X10
	MOVUPD 48(AX), X11
	SHLQ   $2, CX
	XORQ   BX, BX

sum:
	MOVUPS   (DI)(BX*1), X0
	CVTPS2PD X0, X1
	MOVHLPS  X0, X2
	CVTPS2PD X2, X2
	ADDPD    X1, X8
	ADDPD    X2, X9
	MULPD    X1, X1
	MULPD    X2, X2
	ADDPD    X1, X10
	ADDPD    X2, X11
	ADDQ     $16, BX
	CMPQ     BX, CX
	JLT      sum

	MOVUPD X8, 0(AX)
	MOVUPD X9, 16(AX)
	MOVUPD X10, 32(AX)
	MOVUPD X11, 48(AX)
	RET

// func bnApplySIMD(d, xh *float32, k int, c *bnConsts[float32])
TEXT ·bnApplySIMD(SB), NOSPLIT, $0-32
	MOVQ d+0(FP), DI
	MOVQ xh+8(FP), SI
	MOVQ k+16(FP), CX
	MOVQ c+24(FP), AX
	MOVSS  0(AX), X8 // c1
	SHUFPS $0, X8, X8
	MOVSS  4(AX), X9 // c2
	SHUFPS $0, X9, X9
	MOVSS  8(AX), X10 // c3
	SHUFPS $0, X10, X10
	SHLQ   $2, CX
	XORQ   BX, BX

apply:
	MOVUPS (DI)(BX*1), X0
	SUBPS  X9, X0 // d − c2
	MOVUPS (SI)(BX*1), X1
	MULPS  X10, X1 // x̂·c3
	SUBPS  X1, X0
	MULPS  X8, X0 // ·c1
	MOVUPS X0, (DI)(BX*1)
	ADDQ   $16, BX
	CMPQ   BX, CX
	JLT    apply
	RET
