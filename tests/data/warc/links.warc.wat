WARC/1.0
WARC-Type: warcinfo
WARC-Date: 2024-05-31T01:16:45Z
WARC-Filename: CC-MAIN-20240517233122-20240518023122-00000.warc.wat.gz
WARC-Record-ID: <urn:uuid:b4fe2291-40c2-4492-b4ab-7a7776be6c73>
Content-Type: application/warc-fields
Content-Length: 218

Software-Info: ia-web-commons.1.1.10-SNAPSHOT-20240513074037
Extracted-Date: Fri, 31 May 2024 01:16:45 GMT
format: WARC File Format 1.0
conformsTo: http://bibnum.bnf.fr/WARC/WARC_ISO_28500_version1_latestdraft.pdf


WARC/1.0
WARC-Type: metadata
WARC-Target-URI: https://www.example.org/gallery/index.html
WARC-Date: 2024-05-31T01:17:49Z
WARC-Record-ID: <urn:uuid:3d3f4785-c69a-4f8c-968c-d23302c55ef4>
WARC-Refers-To: <urn:uuid:292f457d-203c-42f2-a1b5-69a4dabefd4f>
Content-Type: application/json
Content-Length: 1354

{"Container":{"Filename":"CC-MAIN-20240517233122-20240518023122-00000.warc.gz","Compressed":true,"Offset":"1023","Gzip-Metadata":{"Deflate-Length":"5952","Header-Length":"10","Footer-Length":"8","Inflated-CRC":"536467295","Inflated-Length":"626"}},"Envelope":{"Payload-Metadata":{"Actual-Content-Type":"application/http; msgtype=request","HTTP-Request-Metadata":{"Request-Message":{"Method":"GET","Path":"/gallery/index.html","Version":"HTTP/1.1"},"Headers-Length":"263","Headers":{"User-Agent":"CCBot/2.0 (https://commoncrawl.org/faq/)","Accept":"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8","Accept-Encoding":"br,gzip","Host":"www.example.org","Connection":"Keep-Alive"},"Entity-Length":"0","Entity-Digest":"sha1:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ","Entity-Trailing-Slop-Length":"0"},"Actual-Content-Length":"265","Trailing-Slop-Length":"4","Block-Digest":"sha1:IE7NEN3QEJHUCYRRGVMHDDW3BEHFRQ6V"},"Format":"WARC/1.0","WARC-Header-Length":"357","WARC-Header-Metadata":{"WARC-Type":"request","WARC-Date":"2024-05-18T01:58:10Z","WARC-Record-ID":"<urn:uuid:292f457d-203c-42f2-a1b5-69a4dabefd4f>","Content-Length":"265","Content-Type":"application/http; msgtype=request","WARC-Warcinfo-ID":"<urn:uuid:668d88fc-4208-41fc-b327-1aa6cb783331>","WARC-IP-Address":"93.184.215.14","WARC-Target-URI":"https://www.example.org/gallery/index.html"}}}

WARC/1.0
WARC-Type: metadata
WARC-Target-URI: https://www.example.org/gallery/index.html
WARC-Date: 2024-05-31T01:17:49Z
WARC-Record-ID: <urn:uuid:7a0b5c1e-2a4f-4d7e-9c3b-5e8f1a2b3c4d>
WARC-Refers-To: <urn:uuid:2aabeff2-67f5-4608-8466-e87c6296e2b6>
Content-Type: application/json
Content-Length: 2443

{"Container":{"Filename":"CC-MAIN-20240517233122-20240518023122-00000.warc.gz","Compressed":true,"Offset":"1530","Gzip-Metadata":{"Deflate-Length":"5952","Header-Length":"10","Footer-Length":"8","Inflated-CRC":"536467295","Inflated-Length":"25358"}},"Envelope":{"Format":"WARC","WARC-Header-Length":"647","Actual-Content-Length":"24707","WARC-Header-Metadata":{"WARC-Type":"response","WARC-Date":"2024-05-18T01:58:10Z","WARC-Record-ID":"<urn:uuid:2aabeff2-67f5-4608-8466-e87c6296e2b6>","Content-Length":"24707","Content-Type":"application/http; msgtype=response","WARC-Warcinfo-ID":"<urn:uuid:668d88fc-4208-41fc-b327-1aa6cb783331>","WARC-IP-Address":"93.184.215.14","WARC-Target-URI":"https://www.example.org/gallery/index.html"},"Block-Digest":"sha1:U45OUWTVGO5ZPCXRAP5JJMF4OB4VXRQ5","Payload-Metadata":{"Actual-Content-Type":"application/http; msgtype=response","HTTP-Response-Metadata":{"Headers-Length":"317","Entity-Trailing-Slop-Length":"0","Entity-Length":"24390","Headers":{"Server":"nginx","Content-Type":"text/html; charset=UTF-8","Vary":"Accept-Encoding","X-Crawler-Content-Encoding":"gzip","Content-Length":"24390","Date":"Sat, 18 May 2024 01:58:10 GMT"},"Response-Message":{"Status":"200","Version":"HTTP/1.1","Reason":"OK"},"Entity-Digest":"sha1:CYIY4H7KRQJBLBBRZLT4NSUPM4NG27KO","HTML-Metadata":{"Head":{"Metas":[{"name":"viewport","content":"width=device-width, initial-scale=1"}],"Title":"Winter wildlife gallery","Base":"/gallery/photos/","Link":[{"path":"LINK@/href","rel":"stylesheet","type":"text/css","url":"/style.css"}],"Scripts":[{"path":"SCRIPT@/src","url":"https://www.example.org/js/app.js"}]},"Links":[{"path":"A@/href","text":"Home","url":"/"},{"path":"IMG@/src","url":"red-fox.jpg","alt":"A red fox in the snow","title":"Fox"},{"path":"IMG@/longdesc","url":"red-fox.html"},{"path":"IMG@/src","url":"//cdn.example.org/img/owl.png","alt":"Barn owl \n at dusk"},{"path":"IMG@/src","url":"/logo.gif"},{"path":"IMG@/src","url":"spacer.gif","alt":"  "},{"path":"IMG@/src","url":"data:image/gif;base64,R0lGODlhAQABAAAAACw=","alt":"pixel"},{"path":"IMG@/src","url":"javascript:void(0)","alt":"menu"},{"path":"IMG@/src","url":"http://exa mple.org/x.jpg","alt":"broken host"},{"path":"A@/href","text":"Next page","url":"page2.html","rel":"next"},{"path":"IMG@/src","url":"red-fox.jpg#zoom","alt":"A red fox in the snow"},{"path":"IMG@/src","url":"Café crème.jpg","alt":"Café & crème"}]}},"Trailing-Slop-Length":"4"}}}

WARC/1.0
WARC-Type: metadata
WARC-Target-URI: http://blog.example.net/2024/05/walk.html
WARC-Date: 2024-05-31T01:17:49Z
WARC-Record-ID: <urn:uuid:8b1c6d2f-3b5a-4e8f-8d4c-6f9a2b3c4d5e>
WARC-Refers-To: <urn:uuid:0d5c9a8e-0b52-4b8e-9d7e-6b1c1f1b2a33>
Content-Type: application/json
Content-Length: 1447

{"Container":{"Filename":"CC-MAIN-20240517233122-20240518023122-00000.warc.gz","Compressed":true,"Offset":"31210","Gzip-Metadata":{"Deflate-Length":"5952","Header-Length":"10","Footer-Length":"8","Inflated-CRC":"536467295","Inflated-Length":"25358"}},"Envelope":{"Format":"WARC","WARC-Header-Length":"647","Actual-Content-Length":"24707","WARC-Header-Metadata":{"WARC-Type":"response","WARC-Date":"2024-05-18T01:58:10Z","WARC-Record-ID":"<urn:uuid:0d5c9a8e-0b52-4b8e-9d7e-6b1c1f1b2a33>","Content-Length":"24707","Content-Type":"application/http; msgtype=response","WARC-Warcinfo-ID":"<urn:uuid:668d88fc-4208-41fc-b327-1aa6cb783331>","WARC-IP-Address":"93.184.215.14","WARC-Target-URI":"http://blog.example.net/2024/05/walk.html"},"Block-Digest":"sha1:U45OUWTVGO5ZPCXRAP5JJMF4OB4VXRQ5","Payload-Metadata":{"Actual-Content-Type":"application/http; msgtype=response","HTTP-Response-Metadata":{"Headers-Length":"317","Entity-Trailing-Slop-Length":"0","Entity-Length":"24390","Headers":{"Server":"nginx","Content-Type":"text/html; charset=UTF-8","Vary":"Accept-Encoding","X-Crawler-Content-Encoding":"gzip","Content-Length":"24390","Date":"Sat, 18 May 2024 01:58:10 GMT"},"Response-Message":{"Status":"200","Version":"HTTP/1.1","Reason":"OK"},"Entity-Digest":"sha1:CYIY4H7KRQJBLBBRZLT4NSUPM4NG27KO","HTML-Metadata":{"Head":{"Title":"A walk"},"Links":[{"path":"IMG@/src","url":"../../media/path.jpg","alt":"Forest path"}]}},"Trailing-Slop-Length":"4"}}}

WARC/1.0
WARC-Type: metadata
WARC-Target-URI: https://www.example.org/gallery/photos/red-fox.jpg
WARC-Date: 2024-05-31T01:17:49Z
WARC-Record-ID: <urn:uuid:9c2d7e3a-4c6b-4f9a-9e5d-7a0b3c4d5e6f>
WARC-Refers-To: <urn:uuid:5b7f3c3e-0e0a-4a31-8f43-1b9f2f0c6d1e>
Content-Type: application/json
Content-Length: 1319

{"Container":{"Filename":"CC-MAIN-20240517233122-20240518023122-00000.warc.gz","Compressed":true,"Offset":"40522","Gzip-Metadata":{"Deflate-Length":"5952","Header-Length":"10","Footer-Length":"8","Inflated-CRC":"536467295","Inflated-Length":"25358"}},"Envelope":{"Format":"WARC","WARC-Header-Length":"647","Actual-Content-Length":"24707","WARC-Header-Metadata":{"WARC-Type":"response","WARC-Date":"2024-05-18T01:58:10Z","WARC-Record-ID":"<urn:uuid:5b7f3c3e-0e0a-4a31-8f43-1b9f2f0c6d1e>","Content-Length":"24707","Content-Type":"application/http; msgtype=response","WARC-Warcinfo-ID":"<urn:uuid:668d88fc-4208-41fc-b327-1aa6cb783331>","WARC-IP-Address":"93.184.215.14","WARC-Target-URI":"https://www.example.org/gallery/photos/red-fox.jpg"},"Block-Digest":"sha1:U45OUWTVGO5ZPCXRAP5JJMF4OB4VXRQ5","Payload-Metadata":{"Actual-Content-Type":"application/http; msgtype=response","HTTP-Response-Metadata":{"Headers-Length":"317","Entity-Trailing-Slop-Length":"0","Entity-Length":"24390","Headers":{"Server":"nginx","Content-Type":"image/jpeg","Vary":"Accept-Encoding","X-Crawler-Content-Encoding":"gzip","Content-Length":"24390","Date":"Sat, 18 May 2024 01:58:10 GMT"},"Response-Message":{"Status":"200","Version":"HTTP/1.1","Reason":"OK"},"Entity-Digest":"sha1:CYIY4H7KRQJBLBBRZLT4NSUPM4NG27KO"},"Trailing-Slop-Length":"4"}}}

WARC/1.0
WARC-Type: metadata
WARC-Target-URI: http://broken.example.com/
WARC-Date: 2024-05-31T01:17:49Z
WARC-Record-ID: <urn:uuid:ad3e8f4b-5d7c-4a0b-af6e-8b1c4d5e6f70>
WARC-Refers-To: <urn:uuid:be4f9a5c-6e8d-4b1c-b07f-9c2d5e6f7081>
Content-Type: application/json
Content-Length: 400

{"Container":{"Filename":"CC-MAIN-20240517233122-20240518023122-00000.warc.gz","Compressed":true,"Offset":"1530","Gzip-Metadata":{"Deflate-Length":"5952","Header-Length":"10","Footer-Length":"8","Inflated-CRC":"536467295","Inflated-Length":"25358"}},"Envelope":{"Format":"WARC","WARC-Header-Length":"647","Actual-Content-Length":"24707","WARC-Header-Metadata":{"WARC-Type":"response","WARC-Date":"202

