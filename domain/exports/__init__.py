"""Exports: an organization's data as a file (CSV, Parquet, XLSX), made asynchronously by the
export runner (warehouse/exports/) and downloaded through a presigned URL."""
