from aqstream.cli import app

app(prog_name="aqstream")
