"""Released feature layouts in and out of avzsl caches (``avzsl-import``, ``avzsl-export``).

``common.py`` (what every layout shares), ``importing.py`` and ``exporting.py`` (the import and export skeletons),
``reference.py`` (the reference loaders' ``class-split/`` and text dicts); one package per layout (``avca/``,
``clipclap/``) holds its file format, its reader and its writer.
"""
