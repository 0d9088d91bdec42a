"""asr_kd_library: a py_library whose imports are checked at build time."""

def asr_kd_library(name, srcs, deps = [], **kwargs):
    """A py_library, plus an action that fails the build when one of `srcs`
    imports a first-party package that is not below this one
    (tools/import_layers.py LAYERS) or not in `deps`.

    Args:
      name: the library's name.
      srcs: its modules.
      deps: the first-party libraries (and others) it imports.
      **kwargs: passed to py_library.
    """
    native.py_library(name = name, srcs = srcs, deps = deps, **kwargs)
    first_party = [dep for dep in deps if dep.startswith("//")]
    native.genrule(
        name = name + "_import_layers",
        srcs = srcs,
        outs = [name + "_import_layers.ok"],
        tools = ["//tools:import_layers.py"],
        cmd = ("python3 $(location //tools:import_layers.py) " +
               "--package=%s --deps=%s $(SRCS) && touch $@") % (
            native.package_name(),
            ",".join(first_party) or "none",
        ),
    )
