"""Build of the compiled parts; everything else is in pyproject.toml.

- ase_phisnet/native/phisnet.cpp: the native engine (network forward and positions gradient);
- ase_phisnet/equivariant/contraction.cpp: the tensor products' sparse contraction, which the
  torch model uses on the CPU (training included).

Both extensions are optional: without a C++ compiler the package installs and runs on its torch
path, with one warning from the calculator.
"""

from setuptools import Extension, setup

# -fassociative-math (with the flags it requires) lets the compiler vectorize the dot products;
# NaN and infinity handling is kept (no -ffast-math). -march=native: the engine is built on the
# machine that runs it.
SIMD = ["ase_phisnet/equivariant/simd.h"]  # the vector type both kernels include
FLAGS = ["-O3", "-march=native", "-std=c++17", "-fno-math-errno", "-fassociative-math", "-fno-signed-zeros", "-fno-trapping-math"]

setup(
    ext_modules=[
        Extension("ase_phisnet.native._phisnet", ["ase_phisnet/native/phisnet.cpp"], depends=SIMD, language="c++", extra_compile_args=FLAGS, optional=True),
        Extension("ase_phisnet.equivariant._contraction", ["ase_phisnet/equivariant/contraction.cpp"], depends=SIMD, language="c++", extra_compile_args=FLAGS, optional=True),
    ]
)
