"""The signoff evidence pack (specification Appendix A): nine documents generated from the code's
own tables and the control schema, so the pack cannot drift from the system it describes.

One module per document, each with a `document(...)` that returns a `Document` (Markdown and
what is missing or failing); `pdf.py` lays them out as one PDF, `signoff.py` lists them with
their sha256. The use case that reads the data and writes the folder is services/evidence.py.
"""
