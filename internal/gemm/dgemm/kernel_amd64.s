#include "textflag.h"

// func kern6x8(kb int, a *float64, rsa, csa int, b *float64, rsb int, c *float64, ldc int, alpha float64)
//
// C[i][j] += alpha * Σ_p A(i, p) * B(p, j) for i < 6, j < 8, p < kb, with
// A(i, p) = a[i*rsa + p*csa], B(p, j) = b[p*rsb + j] and C row-major (row
// stride ldc); strides in float64s. A is read in place whatever its
// layout (rsa = 1 for a transposed operand), B rows must be contiguous.
// Accumulators: Y0..Y11, row i in Y(2i) (columns 0–3) and Y(2i+1)
// (columns 4–7); Y12, Y13 hold a row of B, Y14, Y15 broadcast elements of
// A. kb ≥ 1.
TEXT ·kern6x8(SB), NOSPLIT, $0-72
	MOVQ kb+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ rsa+16(FP), R9
	MOVQ csa+24(FP), R12
	MOVQ b+32(FP), DI
	MOVQ rsb+40(FP), R13
	MOVQ c+48(FP), DX
	MOVQ ldc+56(FP), R8
	SHLQ $3, R9               // row stride of A in bytes
	SHLQ $3, R12              // column stride of A in bytes
	SHLQ $3, R13              // row stride of B in bytes
	SHLQ $3, R8               // row stride of C in bytes
	LEAQ (R9)(R9*2), R10      // 3 rows of A
	LEAQ (R9)(R9*4), R11      // 5 rows of A

	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	VXORPD Y4, Y4, Y4
	VXORPD Y5, Y5, Y5
	VXORPD Y6, Y6, Y6
	VXORPD Y7, Y7, Y7
	VXORPD Y8, Y8, Y8
	VXORPD Y9, Y9, Y9
	VXORPD Y10, Y10, Y10
	VXORPD Y11, Y11, Y11

loop:
	VMOVUPD      0(DI), Y12
	VMOVUPD      32(DI), Y13
	VBROADCASTSD (SI), Y14
	VBROADCASTSD (SI)(R9*1), Y15
	VFMADD231PD  Y12, Y14, Y0
	VFMADD231PD  Y13, Y14, Y1
	VFMADD231PD  Y12, Y15, Y2
	VFMADD231PD  Y13, Y15, Y3
	VBROADCASTSD (SI)(R9*2), Y14
	VBROADCASTSD (SI)(R10*1), Y15
	VFMADD231PD  Y12, Y14, Y4
	VFMADD231PD  Y13, Y14, Y5
	VFMADD231PD  Y12, Y15, Y6
	VFMADD231PD  Y13, Y15, Y7
	VBROADCASTSD (SI)(R9*4), Y14
	VBROADCASTSD (SI)(R11*1), Y15
	VFMADD231PD  Y12, Y14, Y8
	VFMADD231PD  Y13, Y14, Y9
	VFMADD231PD  Y12, Y15, Y10
	VFMADD231PD  Y13, Y15, Y11
	ADDQ         R12, SI
	ADDQ         R13, DI
	DECQ         CX
	JNZ          loop

	// C += alpha * acc, row by row.
	VBROADCASTSD alpha+64(FP), Y15
	VMOVUPD      0(DX), Y12
	VMOVUPD      32(DX), Y13
	VFMADD231PD  Y15, Y0, Y12
	VFMADD231PD  Y15, Y1, Y13
	VMOVUPD      Y12, 0(DX)
	VMOVUPD      Y13, 32(DX)
	ADDQ         R8, DX
	VMOVUPD      0(DX), Y12
	VMOVUPD      32(DX), Y13
	VFMADD231PD  Y15, Y2, Y12
	VFMADD231PD  Y15, Y3, Y13
	VMOVUPD      Y12, 0(DX)
	VMOVUPD      Y13, 32(DX)
	ADDQ         R8, DX
	VMOVUPD      0(DX), Y12
	VMOVUPD      32(DX), Y13
	VFMADD231PD  Y15, Y4, Y12
	VFMADD231PD  Y15, Y5, Y13
	VMOVUPD      Y12, 0(DX)
	VMOVUPD      Y13, 32(DX)
	ADDQ         R8, DX
	VMOVUPD      0(DX), Y12
	VMOVUPD      32(DX), Y13
	VFMADD231PD  Y15, Y6, Y12
	VFMADD231PD  Y15, Y7, Y13
	VMOVUPD      Y12, 0(DX)
	VMOVUPD      Y13, 32(DX)
	ADDQ         R8, DX
	VMOVUPD      0(DX), Y12
	VMOVUPD      32(DX), Y13
	VFMADD231PD  Y15, Y8, Y12
	VFMADD231PD  Y15, Y9, Y13
	VMOVUPD      Y12, 0(DX)
	VMOVUPD      Y13, 32(DX)
	ADDQ         R8, DX
	VMOVUPD      0(DX), Y12
	VMOVUPD      32(DX), Y13
	VFMADD231PD  Y15, Y10, Y12
	VFMADD231PD  Y15, Y11, Y13
	VMOVUPD      Y12, 0(DX)
	VMOVUPD      Y13, 32(DX)
	VZEROUPPER
	RET
