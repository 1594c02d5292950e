"""Where records come from: the NVD CVE API 2.0 and the windows we page through."""
