"""Rule download: fetch the CIFAR-10 binary archive, checksum-verified, atomically."""

from linbench.data import download_archive
from linbench.scripting import run


def main() -> None:
    download_archive(snakemake.params.url, snakemake.params.md5, snakemake.output.archive)


run(main, snakemake.log[0], rule="download")
