"""Exports (issue G): the datasets an organization can take away, the writers of each file
format, and the runner that turns a queued export into a file in S3.

The rows come out of PostgreSQL as one ``COPY (SELECT ...) TO STDOUT`` in the tenant's context
(row level security applies), streamed in chunks: straight to the file for CSV, through Arrow
record batches for Parquet and XLSX. Memory stays bounded by a chunk, whatever the row count.
"""
