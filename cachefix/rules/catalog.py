# ruff: noqa: E501
"""The built-in rules, as the registry needs them before importing any: written by
`scripts/rule_catalog.py` (do not edit by hand; a test checks it is current).

Each row: code, name, manager, `module:Class`, and the words one of which a RUN must mention
for the rule to find anything (None: the rule looks at every file).
"""

BUILTIN_RULES = (
    ('CF001', 'syntax-directive', 'syntax', 'cachefix.rules.builtin.syntax:SyntaxRule', None),
    ('CF101', 'pip-cache-mount', 'pip', 'cachefix.rules.builtin.pip:PipRule', ('pip',)),
    ('CF102', 'uv-cache-mount', 'uv', 'cachefix.rules.builtin.uv:UvRule', ('uv',)),
    ('CF103', 'poetry-cache-mount', 'poetry', 'cachefix.rules.builtin.poetry:PoetryRule', ('poetry',)),
    ('CF104', 'conda-cache-mount', 'conda', 'cachefix.rules.builtin.conda:CondaRule', ('conda', 'mamba', 'forge')),
    ('CF105', 'spacy-download', 'spacy', 'cachefix.rules.builtin.spacy:SpacyRule', ('spacy',)),
    ('CF201', 'apt-cache-mount', 'apt', 'cachefix.rules.builtin.apt:AptRule', ('apt',)),
    ('CF202', 'apk-cache-mount', 'apk', 'cachefix.rules.builtin.apk:ApkRule', ('apk',)),
    ('CF203', 'dnf-cache-mount', 'dnf', 'cachefix.rules.builtin.dnf:DnfRule', ('dnf', 'yum')),
    ('CF301', 'huggingface-cache-mount', 'hf', 'cachefix.rules.builtin.huggingface:HuggingFaceRule', ('download',)),
    ('CF302', 'hf-python-cache-mount', 'hf', 'cachefix.rules.builtin.huggingface_python:HuggingFacePythonRule', ('snapshot_download', 'hf_hub_download', 'from_pretrained', 'pipeline', 'SentenceTransformer', 'CrossEncoder')),
    ('CF401', 'npm-cache-mount', 'npm', 'cachefix.rules.builtin.npm:NpmRule', ('npm',)),
    ('CF402', 'yarn-cache-mount', 'yarn', 'cachefix.rules.builtin.yarn:YarnRule', ('yarn',)),
    ('CF403', 'pnpm-cache-mount', 'pnpm', 'cachefix.rules.builtin.pnpm:PnpmRule', ('pnpm',)),
    ('CF404', 'bun-cache-mount', 'bun', 'cachefix.rules.builtin.bun:BunRule', ('bun',)),
    ('CF501', 'go-cache-mount', 'go', 'cachefix.rules.builtin.go:GoRule', ('go ', 'go\t')),
    ('CF502', 'cargo-cache-mount', 'cargo', 'cachefix.rules.builtin.cargo:CargoRule', ('cargo',)),
    ('CF503', 'maven-cache-mount', 'maven', 'cachefix.rules.builtin.maven:MavenRule', ('mvn',)),
    ('CF504', 'gradle-cache-mount', 'gradle', 'cachefix.rules.builtin.gradle:GradleRule', ('gradle',)),
    ('CF601', 'composer-cache-mount', 'composer', 'cachefix.rules.builtin.composer:ComposerRule', ('composer',)),
    ('CF602', 'bundler-cache-mount', 'bundler', 'cachefix.rules.builtin.bundler:BundlerRule', ('bundle', 'gem')),
    ('CF701', 'download-cache-mount', 'download', 'cachefix.rules.builtin.downloads:DownloadRule', ('curl', 'wget')),
)
