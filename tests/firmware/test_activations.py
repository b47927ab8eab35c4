"""policy.h's own float tanh and e^x - 1 (no libm on the microcontroller) against the exact values.

Every float in [-20, 20] was checked once (tanh 2.50 ulp, e^x - 1 0.85 ulp at most); here every 331st of them,
about 13 million evaluations, plus the special values.
"""

from __future__ import annotations

import subprocess

import numpy as np

from policies.c_export import ACTIVATIONS_C

DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
%s
/* usage: act STRIDE -> prints max ulp error of tanh and expm1 over the floats with |x| <= 20 */
static double ulp_of(double e) {
    float f = (float)(e < 0 ? -e : e), n;
    unsigned int u;
    if (f == 0.0f) return 1.4e-45;
    memcpy(&u, &f, 4); ++u; memcpy(&n, &u, 4);
    return (double)n - (double)f;
}
extern double tanh(double); extern double expm1(double);
int main(int argc, char **argv) {
    unsigned int u, v, sign, stride = (unsigned int)atoi(argv[1]);
    double worst_t = 0.0, worst_e = 0.0;
    for (u = 0; u <= 0x41A00000u; u += stride) {
        for (sign = 0; sign < 2; ++sign) {
            float x; double d;
            v = sign ? (u | 0x80000000u) : u;
            memcpy(&x, &v, 4);
            d = (double)sim2real_tanhf(x) - tanh((double)x);
            d = (d < 0 ? -d : d) / ulp_of(tanh((double)x));
            if (d > worst_t) worst_t = d;
            if (x <= 0.0f) {
                d = (double)sim2real_expm1f(x) - expm1((double)x);
                d = (d < 0 ? -d : d) / ulp_of(expm1((double)x));
                if (d > worst_e) worst_e = d;
            }
        }
    }
    printf("%%.4f %%.4f\n", worst_t, worst_e);
    {
        volatile float inf = 1e30f * 1e30f, nan = inf - inf;
        printf("%%g %%g %%g %%g %%g\n", (double)sim2real_tanhf(inf), (double)sim2real_tanhf(-inf),
               (double)sim2real_expm1f(-inf), (double)sim2real_tanhf(nan), (double)sim2real_expm1f(nan));
    }
    return 0;
}
"""


def test_tanh_and_expm1_are_within_their_stated_ulp(host_cc, tmp_path):
    src = tmp_path / "act.c"
    src.write_text(DRIVER % ACTIVATIONS_C)
    exe = tmp_path / "act"
    subprocess.run([host_cc, "-std=c99", "-O2", "-Wall", "-Werror", str(src), "-o", str(exe), "-lm"], check=True)
    out = subprocess.run([str(exe), "331"], capture_output=True, text=True, check=True).stdout.split("\n")
    worst_tanh, worst_expm1 = (float(v) for v in out[0].split())
    assert worst_tanh <= 2.5 and worst_expm1 <= 0.85
    assert worst_tanh > 0.5  # it measured something: a float tanh is not exact everywhere
    special = out[1].split()  # tanh(+inf), tanh(-inf), expm1(-inf), tanh(NaN), expm1(NaN)
    assert special[:3] == ["1", "-1", "-1"] and all("nan" in v for v in special[3:])
    print(f"\ntanh {worst_tanh:.2f} ulp, e^x - 1 {worst_expm1:.2f} ulp at most")


def test_the_header_has_neither_libm_nor_double(tmp_path):
    from policies.actor import ActorWeights
    from policies.c_export import header_source
    from sim.action_spec import ActionSpec
    from sim.obs_spec import ObsSpec, ObsTerm

    rng = np.random.default_rng(0)
    w = ActorWeights(
        np.zeros(3, np.float32),
        np.ones(3, np.float32),
        [(rng.standard_normal((8, 3)).astype(np.float32), np.zeros(8, np.float32)),
         (rng.standard_normal((2, 8)).astype(np.float32), np.zeros(2, np.float32))],
        "elu",
        "tanh",
    )  # fmt: skip
    spec = ActionSpec("rpm", ("a", "b"), ("rpm", "rpm"), (0.0, 0.0), (1.0, 1.0), (-1.0, -1.0), (1.0, 1.0))
    text = header_source(w, spec, ObsSpec((ObsTerm("x", 3),)), {})
    assert "#include" not in text and "tanhf(" not in text.replace("sim2real_tanhf(", "")
    assert "expf(" not in text.replace("sim2real_expm1f(", "") and "double" not in text
    assert "sim2real_expm1f(s)" in text and "y[i] = sim2real_tanhf(s);" in text
