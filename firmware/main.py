# boardmcp entry point: the chip runs this file after boot.py. Everything lives in the
# boardmcp package (deployed as .mpy); this file stays tiny so it is cheap to compile.
from boardmcp import app

app.main()
