#include "textflag.h"

// Offsets of the constants in consts (32 bytes each, see expConsts).
#define LO 0
#define HI 32
#define INVLN2N 64
#define SHIFTER 96
#define LN2HI 128
#define LN2LO 160
#define MASK 192
#define C120 224
#define C24 256
#define C6 288
#define C2 320

// func expAVX2(dst, src *float64, n int, m, beta float64, consts *[11][4]uint64, tab *[128]uint64) int
//
// dst[k] = Exp((src[k] − m)·beta) for k < n (n a multiple of 4), four at a time,
// with Exp's operations in Exp's order (no FMA), so the bits are Exp's.
// Stops before the first group with an argument x ≤ −708, x ≥ 709 or NaN
// and returns how many elements it wrote.
TEXT ·expAVX2(SB), NOSPLIT, $0-64
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSD m+24(FP), Y15
	VBROADCASTSD beta+32(FP), Y14
	MOVQ consts+40(FP), R10
	MOVQ tab+48(FP), R11
	XORQ BX, BX

loop:
	CMPQ BX, CX
	JGE  done
	VMOVUPD (SI)(BX*8), Y0
	VSUBPD  Y15, Y0, Y0              // src − m
	VMULPD  Y14, Y0, Y0              // x = (src − m)·beta
	VCMPPD  $0x1e, LO(R10), Y0, Y1   // x > −708
	VCMPPD  $0x11, HI(R10), Y0, Y2   // x < 709
	VANDPD  Y2, Y1, Y1
	VMOVMSKPD Y1, AX
	CMPQ    AX, $15
	JNE     done

	VMULPD  INVLN2N(R10), Y0, Y1     // x·N/ln 2
	VADDPD  SHIFTER(R10), Y1, Y1     // z
	VSUBPD  SHIFTER(R10), Y1, Y2     // kd = z − shifter
	VMULPD  LN2HI(R10), Y2, Y3
	VSUBPD  Y3, Y0, Y3               // x − kd·ln2Hi
	VMULPD  LN2LO(R10), Y2, Y4
	VSUBPD  Y4, Y3, Y3               // r
	VPAND   MASK(R10), Y1, Y2        // table index k mod N
	VPCMPEQQ Y5, Y5, Y5
	VPGATHERQQ Y5, (R11)(Y2*8), Y4   // expTab[k mod N]
	VPSLLQ  $45, Y1, Y1              // k << (52 − 7)
	VPADDQ  Y1, Y4, Y4               // scale = 2^(k/N)

	VMULPD  C120(R10), Y3, Y0        // r/120
	VADDPD  C24(R10), Y0, Y0
	VMULPD  Y3, Y0, Y0
	VADDPD  C6(R10), Y0, Y0
	VMULPD  Y3, Y0, Y0
	VADDPD  C2(R10), Y0, Y0
	VMULPD  Y3, Y3, Y1               // r²
	VMULPD  Y0, Y1, Y0
	VADDPD  Y0, Y3, Y0               // p
	VMULPD  Y0, Y4, Y0               // scale·p
	VADDPD  Y0, Y4, Y0               // scale + scale·p
	VMOVUPD Y0, (DI)(BX*8)
	ADDQ    $4, BX
	JMP     loop

done:
	VZEROUPPER
	MOVQ BX, ret+56(FP)
	RET
