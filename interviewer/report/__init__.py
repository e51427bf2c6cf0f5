"""Reports: the transcript model and summary (``transcript``) and the export formats (``exporters``)."""
