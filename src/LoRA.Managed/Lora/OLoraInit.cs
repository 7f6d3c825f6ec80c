using LoRA.Managed.Tensors;
using MathNet.Numerics.LinearAlgebra;
using MathNet.Numerics.LinearAlgebra.Factorization;

namespace LoRA.Managed.Lora;

/// <summary>
/// PEFT's <c>olora_init</c> (<c>peft/tuners/lora/layer.py</c>): <c>Q, R = qr(W)</c>, <c>lora_A = R[:r]</c>,
/// <c>lora_B = Q[:, :r]</c>, <c>W ← W − scale·B·A</c>. The signs of Q's columns (and R's rows) depend on the QR
/// routine, but each product <c>Q[:, j]·R[j]</c>, hence B·A and the residual, does not.
/// </summary>
internal static class OLoraInit
{
    public static void Apply(Tensor a, Tensor b, Tensor baseWeight, double scale)
    {
        int rank = a.Shape[0], outF = baseWeight.Shape[0], inF = baseWeight.Shape[1];
        Matrix<double> w = LowRank.ToMatrix(baseWeight);
        // MathNet factors only tall matrices. For a wide W, Householder QR (LAPACK's geqrf, torch's) builds its
        // out reflectors from the leading out×out block alone, so Q is that block's and R = Qᵀ·W.
        Matrix<double> q = (outF >= inF ? w : w.SubMatrix(0, outF, 0, outF)).QR(QRMethod.Full).Q;
        Matrix<double> r = q.SubMatrix(0, outF, 0, rank).TransposeThisAndMultiply(w);
        LowRank.CopyTo(q.SubMatrix(0, outF, 0, rank), b.Data);
        LowRank.CopyTo(r, a.Data);
        LowRank.WriteResidual(w, scale, b, a, baseWeight);   // as PiSSA
    }
}
