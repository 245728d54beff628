"""Package size: the function code and the dependencies layer, unzipped, against Lambda's limit.

Function code: functions/ as `sam build` copies it for each function (the webhook, the TikTok
sender and the redrive all have CodeUri: functions/, so each function's package is this same
code plus the same layer), counted as its .py files. Layer: what
  pip install -r layers/dependencies/requirements.txt --target DIR --platform manylinux2014_aarch64
      --implementation cp --python-version 3.13 --only-binary=:all:
produces (the template's runtime python3.13 on arm64), in a temporary folder under
benchmarks/.work/ (gitignored), removed afterwards. pip may download from PyPI; its cache makes
the next run quick. Lambda's limit is 250 MB unzipped for each function and all its layers.
"""

import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import defaultdict
from pathlib import Path

from benchmarks import common

LIMIT_BYTES = 250 * 1024 * 1024  # Lambda: 250 MB unzipped, function code + layers ("MB" = MiB)
REQUIREMENTS = common.REPO / "layers" / "dependencies" / "requirements.txt"
PIP_ARGS = (
    "--platform",
    "manylinux2014_aarch64",
    "--implementation",
    "cp",
    "--python-version",
    "3.13",
    "--only-binary=:all:",
)


def run(keep: bool = False) -> common.Section:
    code_files = sorted(p for p in common.FUNCTIONS.rglob("*.py") if "__pycache__" not in p.parts)
    code_bytes = sum(p.stat().st_size for p in code_files)

    common.WORK.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="layer-", dir=common.WORK))
    try:
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
            "-r",
            str(REQUIREMENTS),
            "--target",
            str(folder),
            *PIP_ARGS,
        ]
        result = subprocess.run(command, capture_output=True, text=True, cwd=common.REPO)
        if result.returncode != 0:
            markdown = (
                f"pip could not build the layer (exit {result.returncode}):\n\n```\n"
                f"{(result.stderr or result.stdout)[-2000:]}\n```"
            )
            return common.Section("package_size", "6. Package size", markdown, {}, ok=False)
        layer_files = [p for p in folder.rglob("*") if p.is_file()]
        layer_bytes = sum(p.stat().st_size for p in layer_files)
        pyc_bytes = sum(p.stat().st_size for p in layer_files if p.suffix == ".pyc")
        packages = _by_distribution(folder)
        zipped_layer = _zipped_size(folder, layer_files)
        zipped_code = _zipped_size(common.FUNCTIONS, code_files)
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)

    total = code_bytes + layer_bytes
    sizes = common.table(
        ["part", "files", "unzipped", "zipped (deflate)", "share of the 250 MB limit"],
        [
            [
                "function code (functions/**/*.py)",
                len(code_files),
                _size(code_bytes),
                _size(zipped_code),
                f"{code_bytes / LIMIT_BYTES:.3%}",
            ],
            [
                "dependencies layer (pip --target, cp313 aarch64)",
                len(layer_files),
                _size(layer_bytes),
                _size(zipped_layer),
                f"{layer_bytes / LIMIT_BYTES:.1%}",
            ],
            [
                "total",
                len(code_files) + len(layer_files),
                _size(total),
                _size(zipped_code + zipped_layer),
                f"**{total / LIMIT_BYTES:.1%}**",
            ],
            [
                f"of the layer: .pyc files pip compiled with Python {sys.version_info.major}."
                f"{sys.version_info.minor}",
                "",
                _size(pyc_bytes),
                "",
                f"{pyc_bytes / LIMIT_BYTES:.1%}",
            ],
        ],
    )
    biggest = sorted(packages.items(), key=lambda item: item[1][0], reverse=True)
    biggest_table = common.table(
        [
            "layer: biggest 8 distributions",
            "version",
            "files",
            "unzipped",
            "of which .pyc",
            "share of the layer",
        ],
        [
            [name, version, count, _size(size), _size(pyc), f"{size / layer_bytes:.1%}"]
            for name, (size, count, version, pyc) in biggest[:8]
        ],
    )
    everything = ", ".join(
        f"{name} {version}".strip() for name, (_, _, version, _) in sorted(packages.items())
    )
    verdict = (
        f"Unzipped total {_size(total)} of Lambda's 250 MB (262,144,000 bytes) limit: "
        f"**{'PASS' if total <= LIMIT_BYTES else 'FAIL'}**, {_size(LIMIT_BYTES - total)} to spare."
    )
    notes = (
        "pip resolves the requirements without constraints.txt, as `sam build` does, so transitive "
        f"versions are the newest that fit. pip byte-compiles what it installs with the interpreter "
        f"running it (here Python {sys.version_info.major}.{sys.version_info.minor}): those .pyc files "
        f"({_size(pyc_bytes)}) would not be used by the python3.13 runtime; without them the layer is "
        f"{_size(layer_bytes - pyc_bytes)}. Distributions in the layer: {everything}."
    )
    sharing = _functions_sharing_code()
    notes += (
        f" The {len(sharing)} functions with CodeUri functions/ ({', '.join(sharing)}) each get this code "
        f"and this layer: the total above is each one's size against the limit."
    )
    markdown = "\n\n".join([sizes, verdict, biggest_table, notes])
    data = {
        "code_bytes": code_bytes,
        "layer_bytes": layer_bytes,
        "total_bytes": total,
        "layer_pyc_bytes": pyc_bytes,
        "limit_bytes": LIMIT_BYTES,
        "zipped_bytes": zipped_code + zipped_layer,
        "packages": {
            name: {"bytes": size, "files": count, "version": version, "pyc_bytes": pyc}
            for name, (size, count, version, pyc) in packages.items()
        },
    }
    return common.Section("package_size", "6. Package size", markdown, data, ok=total <= LIMIT_BYTES)


def _functions_sharing_code() -> list[str]:
    from devtools.template_tables import load_template

    resources = load_template()["Resources"]
    return [
        name
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
        and str(resource["Properties"].get("CodeUri", "")).rstrip("/") == "functions"
    ]


def _size(size: int) -> str:
    return f"{size / 1024 / 1024:.2f} MB"


def _by_distribution(folder: Path) -> dict[str, tuple[int, int, str, int]]:
    """Bytes, files, version and .pyc bytes of each distribution, from the RECORD files pip wrote."""
    owner: dict[Path, str] = {}
    versions: dict[str, str] = {}
    for record in folder.glob("*.dist-info/RECORD"):
        name, version = record.parent.name.removesuffix(".dist-info").rsplit("-", 1)
        versions[name] = version
        for line in record.read_text().splitlines():
            path = line.rsplit(",", 2)[0]
            if path:
                owner[(folder / path).resolve()] = name
    sizes: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for path in folder.rglob("*"):
        if path.is_file():
            name = owner.get(path.resolve(), "(other files: bin/ scripts)")
            size = path.stat().st_size
            sizes[name][0] += size
            sizes[name][1] += 1
            sizes[name][2] += size if path.suffix == ".pyc" else 0
    return {name: (size, count, versions.get(name, ""), pyc) for name, (size, count, pyc) in sizes.items()}


def _zipped_size(root: Path, files: list[Path]) -> int:
    target = Path(tempfile.mkstemp(suffix=".zip", dir=common.WORK)[1])
    try:
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in files:
                archive.write(path, path.relative_to(root))
        return target.stat().st_size
    finally:
        target.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--keep", action="store_true", help="keep the layer folder under benchmarks/.work/")
    args = parser.parse_args(argv)
    section = common.timed(run, args.keep)
    common.emit(section, args.json_out)


if __name__ == "__main__":
    main()
