"""Image scanning as Amazon Inspector does it: real inventories, real advisories.

    layers (tar streams) ─> catalogers (one per package format) ─> inventory (per layer, cached)
         ─> merged image inventory (whiteouts applied, origin layer per package)
    OSV advisories (imported, indexed by ecosystem + package) ─> matcher (per ecosystem scheme)
         ─> findings (opened, refreshed, closed) ─> ECR DescribeImageScanFindings / Inspector2

Pure parts (versions, osv ranges, matcher, catalog parsers, the merge) take data and return data;
the scanner and the controller are the thin edges that read blobs and write the store.
"""
