# One date style across the portal (Django's defaults mix "Dec. 1, 2026" and "12/01/2026"):
# unambiguous day-month-year and a 24-hour clock.
DATE_FORMAT = "j M Y"
DATETIME_FORMAT = "j M Y, H:i"
SHORT_DATE_FORMAT = DATE_FORMAT
SHORT_DATETIME_FORMAT = DATETIME_FORMAT
MONTH_DAY_FORMAT = "j M"
