"""shiyan (实验): the methods of a machine-learning notebook, implemented, checked against an
oracle, reproduced with measured numbers, benchmarked, and published as a bilingual feed."""

__version__ = "0.1.0"
