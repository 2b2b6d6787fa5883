"""The project's face: `mnistgan serve` (a local web app over a folder of runs, app.py) and
`mnistgan report` (one self-contained HTML file per run). Both tell a run's story with the
same template (story.py). Needs the `serve` extra (FastAPI, uvicorn) for the server only;
the report needs nothing beyond the core."""
